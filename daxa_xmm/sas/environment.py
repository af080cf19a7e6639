"""Finding SAS: its install, its calibration files, its version.

Everything SAS-facing starts here: :func:`detect_sas` checks ``SAS_DIR``, ``SAS_CCFPATH`` and
``sasversion`` before a single observation is touched, so a missing setup fails once, early,
with a message that says what is missing and how to set SAS up, instead of failing every
unit of the archive with an obscure ``No such file or directory``.
"""

from __future__ import annotations

__all__ = ["SasEnvironment", "SETUP_HINT", "detect_sas", "sas_env_for_obs"]

import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from daxa_xmm.errors import SasNotFoundError, SasVersionError
from daxa_xmm.sas.version import SasVersion, parse_sas_version

SETUP_HINT = """\
To set SAS up, in the shell that runs daxa-xmm:
    . $HEADAS/headas-init.sh           # when your SAS build needs HEASoft
    . /path/to/xmmsas/setsas.sh        # sets SAS_DIR and puts sasversion on PATH
                                       # (or: source $SAS_DIR/setsas.sh)
    export SAS_CCFPATH=/path/to/ccf    # the folder of calibration files (CCF)
Or run the pipeline without SAS, on the built-in stand-in:
    python -m flows.process_archive --demo"""


@dataclass(frozen=True)
class SasEnvironment:
    """A working SAS installation, as :func:`detect_sas` found it.

    Attributes:
        sas_dir: ``SAS_DIR``, the install folder.
        ccfpath: the first folder of ``SAS_CCFPATH`` (the calibration files).
        version: the release ``sasversion`` reported.
        sasversion_output: what ``sasversion`` printed, for the manifest and for reports.
        ccfpaths: every folder of ``SAS_CCFPATH`` (it may list several, ``:``-separated).
        sasversion_path: the ``sasversion`` executable that answered.
    """

    sas_dir: Path
    ccfpath: Path
    version: SasVersion
    sasversion_output: str
    ccfpaths: tuple[Path, ...] = ()
    sasversion_path: Path | None = None


def _dir_problem(env: Mapping[str, str], name: str, what: str) -> str | None:
    value = env.get(name, "")
    if not value.strip():
        return f"{name} is not set ({what})"
    for part in value.split(os.pathsep):
        if part and not Path(part).is_dir():
            return f"{name}={value} but {part} is not an existing folder ({what})"
    if not any(value.split(os.pathsep)):
        return f"{name} is empty ({what})"
    return None


def _fail(problems: list[str]) -> SasNotFoundError:
    listed = "\n".join(f"  - {p}" for p in problems)
    return SasNotFoundError(f"SAS is not set up:\n{listed}\n{SETUP_HINT}")


def _run_sasversion(exe: str, env: Mapping[str, str], timeout_s: float) -> tuple[int, str]:
    """Run ``sasversion`` in its own process group; kill the group if it hangs."""
    proc = subprocess.Popen(
        [exe],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(env),
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # pragma: no cover - it ended just now
            pass
        proc.communicate()
        raise
    return proc.returncode, out


def detect_sas(
    env: Mapping[str, str] | None = None, *, timeout_s: float = 30, heasoft: bool = False
) -> SasEnvironment:
    """Check that SAS is set up, and find its version.

    Requires ``SAS_DIR`` (an existing folder), ``SAS_CCFPATH`` (existing folders), and a
    ``sasversion`` on ``PATH`` that runs and prints a version in either form SAS uses
    (``SAS release: 22.1.0-a8f2c2afa-20250304`` or ``xmmsas_20211130_0941-20.0.0``).

    Args:
        env: the environment to check (default ``os.environ``); ``sasversion`` runs with it.
        timeout_s: seconds ``sasversion`` may take before it (and its children) are killed.
        heasoft: also require HEASoft (``lcurve`` on PATH): emchain needs it, and DAXA
            0.3.7 checks for ``lcurve`` before emchain for that reason.

    Returns:
        The install, calibration folder, version and the raw ``sasversion`` output.

    Raises:
        SasNotFoundError: naming everything that is missing (all of it at once) and how
            to set SAS up; also when ``sasversion`` fails, hangs, or prints no version.
    """
    env = dict(os.environ if env is None else env)
    problems = [
        p
        for p in (
            _dir_problem(env, "SAS_DIR", "the SAS install, set by setsas.sh"),
            _dir_problem(env, "SAS_CCFPATH", "the calibration files"),
        )
        if p
    ]
    path = env.get("PATH")
    exe = shutil.which("sasversion", path=path) if path else None
    if exe is None:
        problems.append(
            "PATH is not set, so sasversion cannot be found"
            if not path
            else "sasversion is not on PATH (setsas.sh puts $SAS_DIR/bin there)"
        )
    if heasoft and shutil.which("lcurve", path=path or "") is None:
        problems.append(
            "HEASoft is not set up: lcurve (HEASoft's XRONOS) is not on PATH, and emchain (MOS) needs "
            "HEASoft; source $HEADAS/headas-init.sh before setsas.sh, or leave M1 and M2 out of instruments"
        )
    if problems or exe is None:
        raise _fail(problems)
    try:
        code, out = _run_sasversion(exe, env, timeout_s)
    except subprocess.TimeoutExpired:
        raise _fail([f"{exe} did not answer within {timeout_s:g} s"]) from None
    except OSError as exc:
        raise _fail([f"{exe} cannot run: {exc.strerror or exc}"]) from None
    if code != 0:
        tail = "\n".join(out.strip().splitlines()[-5:])
        raise _fail([f"{exe} exited with status {code}:\n{tail}"])
    try:
        version = parse_sas_version(out)
    except SasVersionError:
        raise _fail([f"{exe} printed no SAS version:\n{out.strip()[:500]}"]) from None
    ccfpaths = tuple(Path(p) for p in env["SAS_CCFPATH"].split(os.pathsep) if p)
    return SasEnvironment(
        sas_dir=Path(env["SAS_DIR"]),
        ccfpath=ccfpaths[0],
        version=version,
        sasversion_output=out,
        ccfpaths=ccfpaths,
        sasversion_path=Path(exe),
    )


def sas_env_for_obs(ccf: str | Path, odf: str | Path) -> dict[str, str]:
    """The per-observation variables a SAS call needs: ``SAS_CCF`` and ``SAS_ODF``.

    Paths are made absolute, because every SAS call runs in its own working folder.

    Args:
        ccf: the observation's ``ccf.cif`` (made by cifbuild).
        odf: the ODF folder, or the odfingest summary file once it exists.
    """
    return {"SAS_CCF": os.path.abspath(ccf), "SAS_ODF": os.path.abspath(odf)}
