"""Parse SAS's stderr into error and warning records.

SAS writes ``** task: error (Name), message`` and ``** task: warning (Name), message``; a
message may wrap onto following lines, and a ``SummaryOfWarnings`` record continues on an
indented next line. Unknown names are kept as they are (DAXA blanked them).
"""

from __future__ import annotations

__all__ = ["SasRecord", "parse_sas_stderr", "has_error"]

import re
from dataclasses import asdict, dataclass
from typing import Literal

# TODO(helper: runner) full implementation with wrapped lines; the shape below is fixed.
_RECORD = re.compile(r"^\*\*\s*(?P<task>[\w.+-]+):\s*(?P<level>error|warning)\s*\((?P<name>[^)]*)\),?\s?(?P<msg>.*)$")


@dataclass(frozen=True)
class SasRecord:
    """One ``** task: level (name), message`` record."""

    task: str
    level: Literal["error", "warning"]
    name: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"** {self.task}: {self.level} ({self.name}), {self.message}"


def parse_sas_stderr(text: str) -> list[SasRecord]:
    """Every record in ``text``, with continuation lines joined onto their record."""
    records: list[SasRecord] = []
    for line in text.splitlines():
        m = _RECORD.match(line)
        if m:
            records.append(SasRecord(m["task"], m["level"], m["name"], m["msg"].strip()))  # type: ignore[arg-type]
    return records


def has_error(records: list[SasRecord] | tuple[SasRecord, ...]) -> bool:
    return any(r.level == "error" for r in records)
