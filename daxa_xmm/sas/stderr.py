"""Parse SAS's stderr into error and warning records.

SAS writes ``** task: error (Name), message`` and ``** task: warning (Name), message``. A
long message wraps onto indented continuation lines, and a ``SummaryOfWarnings`` record
ends with a comma and continues on an indented next line
(``   warning NoWCS silently occurred 1 times``). Anything else on stderr (``mv:`` lines of a
wrapping script, Python tracebacks, ``task:- ...`` chatter) belongs to no record and is
never glued onto one. Unknown names are kept verbatim: DAXA blanked names it did not know,
which turned real errors into entries like ``' raised by  - '``.

Examples:
    >>> text = (
    ...     "** evselect: warning (SummaryOfWarnings), \\n"
    ...     "   warning NoWCS silently occurred 1 times\\n"
    ...     "** espfilt: error (noCounts), All histo counts are zero!\\n"
    ...     "mv: rename a to b: No such file or directory\\n"
    ... )
    >>> for r in parse_sas_stderr(text):
    ...     print(r)
    ** evselect: warning (SummaryOfWarnings), warning NoWCS silently occurred 1 times
    ** espfilt: error (noCounts), All histo counts are zero!
"""

from __future__ import annotations

__all__ = ["SasRecord", "parse_sas_stderr", "has_error"]

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

#: ``** task: level (Name), message``. The task may be qualified (``backscale::arfgen``),
#: hence the lazy ``\S+?`` up to the first ``: error``/``: warning``. The name and the
#: comma are optional so that a truncated record is still recognised, not lost.
_RECORD = re.compile(
    r"^(?P<indent>[ \t]*)\*\*[ \t]*(?P<task>\S+?):[ \t]*(?P<level>error|warning)\b[ \t]*"
    r"(?:\((?P<name>[^)]*)\))?[ \t]*,?[ \t]*(?P<msg>.*)$",
    re.IGNORECASE,
)
#: The body of a ``SummaryOfWarnings`` record, which SAS puts on its own line. Notebook
#: captures sometimes lose the extra indent, so this one is recognised by its wording too.
_SUMMARY_BODY = re.compile(r"^[ \t]*warning \S+ silently occurred \d+ times?[ \t]*$", re.IGNORECASE)


@dataclass(frozen=True)
class SasRecord:
    """One ``** task: level (name), message`` record.

    Attributes:
        task: the SAS task that wrote it, e.g. ``espfilt`` (``backscale::arfgen`` for a
            task called from another).
        level: ``error`` or ``warning``.
        name: the SAS error or warning name, verbatim (``noCounts``, ``NoWCS``); empty if
            SAS wrote none.
        message: the message, wrapped lines joined with one space; may be empty.
    """

    task: str
    level: Literal["error", "warning"]
    name: str
    message: str

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> SasRecord:
        """The record :meth:`to_dict` wrote (a manifest's ``errors`` and ``warnings``)."""
        level = d.get("level", "error")
        return cls(task=d.get("task", ""), level="warning" if level == "warning" else "error",
                   name=d.get("name", ""), message=d.get("message", ""))

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready dict, for manifests and reports."""
        return asdict(self)

    def __str__(self) -> str:
        text = f"** {self.task}: {self.level} ({self.name}),"
        return f"{text} {self.message}" if self.message else text


def _indent_width(line: str) -> int:
    """Leading whitespace width, tabs counted as one column each (SAS indents with spaces)."""
    return len(line) - len(line.lstrip(" \t"))


def parse_sas_stderr(text: str) -> list[SasRecord]:
    """Every record in ``text``, with continuation lines joined onto their record.

    A line continues the record above it when it is more indented than the record's own
    ``**`` line (SAS indents wrapped text), or when it is the ``warning X silently occurred
    N times`` body of a ``SummaryOfWarnings`` record. A blank line, a new record or any
    other line ends the record. Never raises: stderr of a crashed task can hold anything.

    Args:
        text: the whole stderr of one SAS call (or several, concatenated).

    Returns:
        The records in the order SAS wrote them.
    """
    records: list[SasRecord] = []
    current: dict[str, str] | None = None
    indent = 0
    parts: list[str] = []

    def flush() -> None:
        if current is not None:
            message = " ".join(p for p in parts if p)
            records.append(SasRecord(current["task"], current["level"], current["name"], message))  # type: ignore[arg-type]

    for line in text.splitlines():
        m = _RECORD.match(line)
        if m:
            flush()
            current = {
                "task": m["task"],
                "level": m["level"].lower(),
                "name": (m["name"] or "").strip(),
            }
            indent = len(m["indent"].expandtabs(1))
            parts = [m["msg"].strip()]
            continue
        if current is None:
            continue
        stripped = line.strip()
        is_summary_body = current["name"] == "SummaryOfWarnings" and bool(_SUMMARY_BODY.match(line))
        if stripped and (_indent_width(line) > indent or is_summary_body):
            parts.append(stripped)
            continue
        flush()
        current = None
        parts = []
    flush()
    return records


def has_error(records: Iterable[SasRecord]) -> bool:
    """True if any record is an ``error``: one of SAS's three signs that a call failed."""
    return any(r.level == "error" for r in records)
