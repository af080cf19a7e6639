"""Every error daxa-xmm raises on purpose.

Each subclasses :class:`DaxaXmmError` *and* the builtin a caller would naturally catch
(``ValueError`` for bad input, ``RuntimeError`` for a failed SAS call), as astropy does, so
``except ValueError`` keeps working while ``except DaxaXmmError`` catches everything of ours.
Messages always name the file, ObsID, unit or parameter at fault.
"""

from __future__ import annotations

__all__ = [
    "DaxaXmmError",
    "SummaryParseError",
    "FilterExpressionError",
    "EmanomParseError",
    "LayoutError",
    "ConfigError",
    "SasNotFoundError",
    "SasVersionError",
    "SasTaskError",
    "SasTimeout",
    "SasOutputMissing",
    "SasInputMissing",
    "DiskFull",
    "DataQualityStop",
    "DISK_FULL_ERRNOS",
    "TRANSIENT_ERRNOS",
    "os_error_may_pass",
    "is_disk_full",
    "explain",
]

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from daxa_xmm.sas.stderr import SasRecord


class DaxaXmmError(Exception):
    """Base class of every error raised by daxa-xmm."""


class SummaryParseError(DaxaXmmError, ValueError):
    """An odfingest summary (or ODF SUM.ASC) file could not be read.

    Attributes:
        path: the file.
        line: 1-based line number where the problem was found (None for whole-file problems).
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {message}")


class FilterExpressionError(DaxaXmmError, ValueError):
    """An evselect selection expression is invalid; the message points at the position."""

    def __init__(self, expression: str, message: str, position: int | None = None) -> None:
        self.expression = expression
        self.reason = message
        self.position = position
        text = f"invalid filter expression: {message}\n  {expression}"
        if position is not None:
            text += "\n  " + " " * position + "^"
        super().__init__(text)


class EmanomParseError(DaxaXmmError, ValueError):
    """An emanom log is missing, unreadable, or holds an unknown CCD state."""


class LayoutError(DaxaXmmError, ValueError):
    """A path or ObsID would leave the archive, or is not of the expected form."""


class ConfigError(DaxaXmmError, ValueError):
    """A processing parameter is invalid; the message names the parameter."""


class SasNotFoundError(DaxaXmmError, RuntimeError):
    """SAS is not set up in this environment; the message says how to set it up."""


class SasVersionError(DaxaXmmError, ValueError):
    """A SAS version string could not be parsed."""


class SasTaskError(DaxaXmmError, RuntimeError):
    """A SAS call failed: non-zero exit, a ``** task: error`` record, or missing outputs.

    Attributes:
        task: SAS task name, e.g. ``espfilt``.
        argv: the exact argv that ran.
        exit_code: the process exit status (negative for a signal, None if never started).
        records: parsed ``** task: error/warning`` records from stderr.
        unit: the unit label (e.g. ``0201903501PNS003``) when known.
        transient: True when a retry may succeed (timeout, signal, OS error); False for a
            deterministic SAS error, which retrying would only repeat.
    """

    def __init__(
        self,
        message: str,
        *,
        task: str,
        argv: Sequence[str] = (),
        exit_code: int | None = None,
        records: Sequence[SasRecord] = (),
        unit: str | None = None,
        transient: bool = False,
        log_files: Sequence[Path] = (),
    ) -> None:
        self.task = task
        self.argv = list(argv)
        self.exit_code = exit_code
        self.records = list(records)
        self.unit = unit
        self.transient = transient
        self.log_files = list(log_files)
        prefix = f"{task}" + (f" [{unit}]" if unit else "")
        super().__init__(f"{prefix}: {message}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary, for manifests and reports."""
        return {
            "task": self.task,
            "unit": self.unit,
            "message": str(self),
            "exit_code": self.exit_code,
            "transient": self.transient,
            "records": [r.to_dict() for r in self.records],
        }


class SasTimeout(SasTaskError, TimeoutError):
    """A SAS call ran past its timeout; its whole process group was killed."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("transient", True)
        super().__init__(message, **kwargs)


class SasOutputMissing(SasTaskError):
    """SAS exited 0 without error records but an expected output is missing."""


class SasInputMissing(SasTaskError):
    """A file the call modifies in place was absent, so the call was not run."""


class DiskFull(SasTaskError):
    """The products' disk is full (or the user's quota spent): the run stops early.

    Every later call would fail the same way, each after its retries, so the run ends at
    once with one message; a re-run once space is freed resumes.
    """


class DataQualityStop(DaxaXmmError, RuntimeError):
    """A unit's chain stopped at a data-quality outcome: a product SAS made holds nothing
    usable (no good time, no events, no WCS, no exposure; daxa_xmm.sas.quality).

    Not a failure: what it feeds is recorded ``skipped`` (not run), the other units and the
    instrument's merge go on, and the observation is not counted failed for it.
    """


#: OS errors that say the disk (or the user's quota) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

#: OS errors that can pass by themselves: an interrupted or busy call, an I/O or network
#: hiccup (an NFS server that went away for a moment), a resource short for a moment.
#: Any other errno (EISDIR, ENOTDIR, EACCES, EPERM, ENOENT, EROFS, ENAMETOOLONG, ELOOP...)
#: says something about the paths that a retry 10 s later finds just as it was. ENOENT is
#: among those: every input the pipeline reads was made, and checked, before the call that
#: reads it starts, so a missing one is missing (a lost NFS mount answers EIO or ESTALE).
TRANSIENT_ERRNOS = frozenset({
    errno.EIO, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.EBUSY, errno.ENOMEM, errno.EMFILE,
    errno.ENFILE, errno.ENOLCK, errno.ETXTBSY, errno.ENOBUFS, errno.ECONNRESET, errno.ECONNREFUSED,
    errno.ECONNABORTED, errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN,
})


def os_error_may_pass(code: int | None) -> bool:
    """Whether an OS error with errno ``code`` may pass if the same thing is tried again
    (None, no errno, as a timeout: yes)."""
    return code is None or code in TRANSIENT_ERRNOS


#: How a full disk reads in a task's own words (strerror, as C programs print it).
_DISK_FULL_TEXT = tuple(os.strerror(code) for code in sorted(DISK_FULL_ERRNOS))


def is_disk_full(exc: BaseException | None = None, text: str = "") -> bool:
    """Whether ``exc`` (an OSError, or one in its causes) or a task's message ``text``
    says the disk or the quota is full."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return any(t in text for t in _DISK_FULL_TEXT)


def explain(exc: Any, prefix: str = "") -> str:
    """A pydantic ValidationError as one line naming every bad field:
    ``espfilt.binsize: '0.5 s' must be >= 1 s; images.bands[0]: ...``.

    ``prefix`` goes before each field's path (a model's name, for instance).
    """
    parts = []
    for err in exc.errors():
        where = prefix
        for p in err["loc"]:
            where += f"[{p}]" if isinstance(p, int) else (f".{p}" if where else str(p))
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(msg if not where or msg.startswith(f"{where}:") else f"{where}: {msg}")
    return "; ".join(parts)
