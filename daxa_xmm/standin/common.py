"""What every stand-in SAS task shares: argv parsing, SAS-style errors, context.

A real SAS task is an executable called as ``task param=value ... -w 1 -V 4``. It knows a
fixed set of parameters (each with a default, all echoed on its ``Executing (routine)``
line), rejects any other name, reads ``SAS_CCF``/``SAS_ODF``/``SAS_CCFPATH`` from the
environment, writes its products into the current directory and reports problems on stderr
as ``** task: error (Name), message``. This module holds the pieces of that interface that
do not depend on the task, so that every stand-in task (and ``evselect``, written apart)
fails the way SAS fails.

Quoting: there is no shell between the caller and the task, so a quote character in an
argv element reaches the task. SAS's parameter library strips ONE matching pair of
enclosing quotes from a value (pySAS users write ``"expression='#XMMEA_EP && PI>150'"`` as
one list element and SAS receives the expression without the quotes; SAS itself re-quotes
values with blanks when it echoes them: ``limits='0.1 6.5'``, ``dssblock=''``). Quotes
inside a value are kept verbatim (``expression=CCDNR=='A'`` keeps them).

The parameter names and defaults of each task are in :mod:`daxa_xmm.standin.params`.

Unknown parameters: the exact wording of SAS's rejection could not be confirmed from a
public log; the stand-in writes ``** task: error (UnknownParameter), ...`` and exits 1.
"""

from __future__ import annotations

__all__ = [
    "SAS_OPTIONS",
    "SasExit",
    "TaskContext",
    "error",
    "warning",
    "info",
    "parse_args",
    "strip_quotes",
    "is_yes",
    "switched_on",
    "executing_line",
    "atomic_path",
    "build_tag",
]

import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from daxa_xmm.standin.params import params_for

#: SAS's common options; those that take a value map to True. ``-w``/``--warning`` sets the
#: warning level, ``-V``/``--verbosity`` the chatter level (both printed on the Executing line).
SAS_OPTIONS: dict[str, bool] = {
    "-w": True,
    "--warning": True,
    "-V": True,
    "--verbosity": True,
    "-h": False,
    "--help": False,
    "-v": False,
    "--version": False,
    "-c": False,
    "--noclobber": False,
    "-t": False,
    "--trace": False,
    "-d": False,
    "--dialog": False,
    "-m": False,
    "--manpage": False,
}

#: Parsed common options are stored in the args dict under these reserved keys.
OPT_WARNING = "-w"
OPT_VERBOSITY = "-V"


class SasExit(Exception):
    """A task ends with a SAS error record; ``cli.main`` prints it and exits with ``status``.

    Attributes:
        name: the SAS error name (``noCounts``, ``UnknownParameter``).
        message: the human part of the record.
        status: the process exit status (SAS exits 1 on an error record).
    """

    def __init__(self, name: str, message: str, status: int = 1) -> None:
        super().__init__(f"({name}), {message}")
        self.name = name
        self.message = message
        self.status = status


def error(task: str, name: str, msg: str) -> None:
    """Print ``** task: error (Name), message`` to stderr exactly as SAS does."""
    sys.stderr.write(f"** {task}: error ({name}), {msg}\n")
    sys.stderr.flush()


def warning(task: str, name: str, msg: str) -> None:
    """Print ``** task: warning (Name), message`` to stderr exactly as SAS does."""
    sys.stderr.write(f"** {task}: warning ({name}), {msg}\n")
    sys.stderr.flush()


def info(task: str, msg: str) -> None:
    """Print SAS's stdout chatter form ``task:- message``."""
    sys.stdout.write(f"{task}:- {msg}\n")
    sys.stdout.flush()


def strip_quotes(value: str) -> str:
    """Remove one matching pair of enclosing quotes, as SAS's parameter library does.

    Examples:
        >>> strip_quotes("'0.1 6.5'")
        '0.1 6.5'
        >>> strip_quotes("CCDNR=='A'")
        "CCDNR=='A'"
        >>> strip_quotes("''")
        ''
    """
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def is_yes(value: str) -> bool:
    """SAS booleans: ``yes/no``, ``Y/N``, ``true/false``, ``T/F`` (case-insensitive)."""
    return value.strip().lower() in {"yes", "y", "true", "t", "1"}


def switched_on(given: Mapping[str, str], default: str, flag: str, *children: str) -> bool:
    """Whether a ``with...`` flag is on: given as yes, or not given while one of its child
    parameters is (else its ``default``). SAS's parameter interface sets a control flag
    implicitly when a child is on the command line ("evselect --xcolumn=RAWX implies
    --withimageset=yes unless -withimageset=no is explicitly set": SAS Users Guide, "Running
    SAS"), and DAXA 0.3.7 relies on it: its evselect gives ``filteredset=`` without the flag."""
    if flag in given:
        return is_yes(given[flag])
    return any(c in given for c in children) or is_yes(default)


def parse_args(task: str, argv: Sequence[str], version: str = "") -> dict[str, str]:
    """Parse ``param=value`` arguments against the task's real parameter set.

    Splits each element at its FIRST ``=`` (a value may hold ``=`` and blanks), strips one
    pair of enclosing quotes (see the module docstring), accepts SAS's common options
    (``-w N``, ``-V N``, ``--warning=N``...; stored under ``"-w"``/``"-V"``, flags as
    ``"yes"``) and rejects anything else. A repeated parameter takes its last value.

    Args:
        task: the SAS task name, a key of :data:`~daxa_xmm.standin.params.PARAMS`.
        argv: the arguments after the task name.
        version: the SAS release, for tasks whose parameters changed (espfilt).

    Returns:
        Only the parameters given (defaults are in ``PARAMS[task]``).

    Raises:
        SasExit: ``UnknownParameter`` for a name the task does not have, ``BadArgument``
            for an element that is neither ``name=value`` nor an option, or an option
            missing its value.

    Examples:
        >>> parse_args("espfilt", ["limits='0.1 6.5'", "elow=2500", "-w", "1"])
        {'limits': '0.1 6.5', 'elow': '2500', '-w': '1'}
    """
    known = params_for(task, version)
    if known is None:
        raise SasExit("UnknownTask", f"No such task: {task}")
    out: dict[str, str] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item.startswith("-") and not item.startswith("--") or item.startswith("--") and "=" not in item:
            if item not in SAS_OPTIONS:
                raise SasExit("BadArgument", f"Unknown option {item}")
            key = _option_key(item)
            if SAS_OPTIONS[item]:
                if i >= len(items):
                    raise SasExit("BadArgument", f"Option {item} requires a value")
                out[key] = items[i]
                i += 1
            else:
                out[key] = "yes"
            continue
        if item.startswith("--"):
            opt, _, val = item.partition("=")
            if opt in SAS_OPTIONS and SAS_OPTIONS[opt]:
                out[_option_key(opt)] = val
                continue
            item = item[2:]  # ``--param=value`` long form of a parameter
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise SasExit("BadArgument", f"Argument '{item}' is not of the form parameter=value")
        if name not in known:
            raise SasExit("UnknownParameter", f"'{name}' is not a parameter of {task}")
        out[name] = strip_quotes(value)
    return out


def _option_key(opt: str) -> str:
    """The reserved args key of a common option (``--warning`` -> ``-w``)."""
    return {"--warning": "-w", "--verbosity": "-V", "--help": "-h", "--version": "-v",
            "--noclobber": "-c", "--trace": "-t", "--dialog": "-d", "--manpage": "-m"}.get(opt, opt)


def _quote_for_echo(value: str) -> str:
    """SAS echoes values with blanks or empty values in single quotes."""
    return f"'{value}'" if value == "" or any(c.isspace() for c in value) else value


def executing_line(task: str, args: Mapping[str, str], version: str = "") -> str:
    """SAS's ``Executing (routine)`` echo: every parameter in order, given values over defaults."""
    parts = [task]
    for name, default in (params_for(task, version) or {}).items():
        parts.append(f"{name}={_quote_for_echo(args.get(name, default))}")
    line = " ".join(parts)
    return f"{line}  -w {args.get('-w', '1')} -V {args.get('-V', '4')}"


class TaskContext:
    """One task invocation: who, with what, where, under which environment.

    A plain class, not a dataclass, as are the other classes of the modules every stand-in
    call imports: importing dataclasses (which imports inspect) cost a fast call a sixth of
    its CPU.

    Attributes:
        task: the SAS task name.
        argv: the raw arguments after the task name.
        cwd: the working directory (SAS writes its products here).
        env: the environment the task sees.
        start: ``time.time()`` at start.
        args: the parsed parameters given on the command line (no defaults).
    """

    __slots__ = ("task", "argv", "cwd", "env", "start", "args")

    def __init__(self, task: str, argv: list[str], cwd: Path, env: dict[str, str],
                 start: float | None = None, args: dict[str, str] | None = None) -> None:
        self.task, self.argv, self.cwd, self.env = task, argv, cwd, env
        self.start = time.time() if start is None else start
        self.args = {} if args is None else args

    @classmethod
    def current(cls, task: str, argv: Sequence[str]) -> TaskContext:
        """The context of this process."""
        return cls(task=task, argv=list(argv), cwd=Path.cwd(), env=dict(os.environ))

    def param(self, name: str) -> str:
        """The given value of ``name``, else the task's default."""
        if name in self.args:
            return self.args[name]
        return (params_for(self.task, self.sas_version()) or {})[name]

    def given(self, name: str) -> bool:
        """Whether ``name`` was on the command line."""
        return name in self.args

    def path(self, value: str) -> Path:
        """A path parameter resolved against the task's cwd."""
        p = Path(value)
        return p if p.is_absolute() else self.cwd / p

    def require_ccf(self) -> Path:
        """The ccf.cif named by SAS_CCF; a SAS error when it is unset or missing."""
        ccf = self.env.get("SAS_CCF", "")
        if not ccf:
            raise SasExit("SAS_CCFUndefined", "The environment variable SAS_CCF is not set; run cifbuild and set SAS_CCF to the CIF")
        path = self.path(ccf)
        if not path.is_file():
            raise SasExit("CIFNotFound", f"The Calibration Index File '{ccf}' (SAS_CCF) does not exist")
        return path

    def require_file(self, param: str, path: str | Path) -> Path:
        """An input dataset that must exist; a SAS ``datasetCouldNotBeRead``-style error naming it."""
        p = self.path(str(path))
        if not str(path) or not p.exists():
            raise SasExit(
                "datasetCouldNotBeRead",
                f"The dataset with name '{path}' (parameter {param}) could not be read; "
                "either it does not exist or it is in an unrecognised format",
            )
        return p

    def sas_version(self) -> str:
        """The SAS version the stand-in pretends to be."""
        return self.env.get("DAXA_STANDIN_SAS_VERSION", "22.1.0-a8f2c2afa-20250304")

    def creator(self, task_version: str) -> str:
        """A FITS CREATOR value like SAS's ``cifbuild (cifbuild-4.8) [xmmsas_...-14.0.0]``."""
        return f"{self.task} ({self.task}-{task_version}) [{build_tag(self.sas_version())}]"


def build_tag(version: str) -> str:
    """``22.1.0-a8f2c2afa-20250304`` -> ``xmmsas_22.1.0-a8f2c2afa-20250304``; old tags verbatim."""
    return version if version.startswith("xmmsas_") else f"xmmsas_{version}"


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces ``final`` atomically."""
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


from daxa_xmm.standin.faults import read_call_log  # noqa: E402  (re-exported: the brief puts it here)

__all__ += ["read_call_log"]
