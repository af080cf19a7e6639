"""The line and record level of SAS's odfingest summary format, apart from what the records mean.

:mod:`daxa_xmm.odf.summary` interprets the records (which instruments, exposures, modes and
filters an observation holds); this module only reads the file and cuts it into records:
it refuses what is not a text summary (missing, too large, binary, control characters),
groups lines under their header (``OBSERVATION``, ``CONFIGURATION ...``, ``EXPOSURE``...),
and splits the two kinds of value line (``VALUE / Comment`` and ``KEY = VALUE // Comment``)
and the scalar values in them (times, counts, Y/N flags). Kept apart so that the format's
lexical rules can be read, and tested, without the bookkeeping of instruments and exposures.
Every problem is a :class:`~daxa_xmm.errors.SummaryParseError` naming the file and line.
"""

from __future__ import annotations

__all__ = [
    "MAX_SUMMARY_BYTES",
    "SummaryRecord",
    "read_records",
]

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from daxa_xmm.errors import SummaryParseError

#: Larger than any summary (the real one is ~200 kB); stops us reading an event list by mistake.
MAX_SUMMARY_BYTES = 32 * 1024 * 1024

_HEADERS = ("OBSERVATION", "FILES", "INSTRUMENT", "EXPOSURE", "PROPOSAL", "DATA QUALITY")
_KV = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=\s*(.*)$")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x0b\x0d-\x1f\x7f]")


@dataclass
class SummaryRecord:
    """One record of a summary file, as found, before interpretation.

    Attributes:
        kind: the header keyword (``EXPOSURE``, ``CONFIGURATION``, ``DATA QUALITY``...).
        header: the whole header line, e.g. ``CONFIGURATION EPIC PN``.
        line: 1-based line number of the header.
        lines: ``(line number, text)`` of each non-comment line after the header, right-stripped.
    """

    kind: str
    header: str
    line: int
    lines: list[tuple[int, str]] = field(default_factory=list)


def _read_text(path: Path) -> list[str]:
    """The file's lines, right-stripped; SummaryParseError when it is not a text file."""
    try:
        size = path.stat().st_size
        if size > MAX_SUMMARY_BYTES:
            raise SummaryParseError(path, f"{size} bytes: too large to be a summary file")
        data = path.read_bytes()
    except SummaryParseError:
        raise
    except FileNotFoundError:
        raise SummaryParseError(path, "file not found") from None
    except OSError as exc:
        raise SummaryParseError(path, f"cannot read: {exc.strerror or exc}") from None
    if not data.strip():
        raise SummaryParseError(path, "file is empty")
    nul = data.find(b"\0")
    if nul >= 0:
        raise SummaryParseError(path, "binary content (NUL byte): not a summary file", data.count(b"\n", 0, nul) + 1)
    # Summaries are ASCII; a PI's name in the PROPOSAL record may not be. Undecodable bytes
    # become U+FFFD and fail the structural checks wherever they matter.
    text = data.decode("utf-8", errors="replace")
    lines = [ln.rstrip() for ln in text.split("\n")]
    for number, ln in enumerate(lines, 1):
        if _CONTROL.search(ln):
            raise SummaryParseError(path, "control characters: not a text summary file", number)
    return lines


def _header_of(text: str) -> str | None:
    """The record keyword a line starts, or None for a content line."""
    if text in _HEADERS:
        return text
    if text == "CONFIGURATION" or text.startswith("CONFIGURATION "):
        return "CONFIGURATION"
    if text.startswith("PATH "):
        return "PATH"
    return None


def _split_records(path: Path, lines: list[str], strict: bool = True) -> tuple[list[SummaryRecord], list[str]]:
    """Group lines into records; also return the leading comment lines (the file's banner).

    ``strict=False`` skips lines outside any record instead of refusing them: the ODF's own
    SUM.ASC, of which only the OBSERVATION record is read, need not match odfingest's layout.
    """
    records: list[SummaryRecord] = []
    banner: list[str] = []
    current: SummaryRecord | None = None
    for number, text in enumerate(lines, 1):
        if text.startswith("//"):
            if not records:
                banner.append(text)
            continue
        if not text.strip():
            continue
        kind = _header_of(text)
        if kind is not None:
            current = SummaryRecord(kind, text, number)
            records.append(current)
            if kind == "PATH":
                current = None  # a one-line record
            continue
        if current is None:
            if not strict:
                continue
            raise SummaryParseError(path, f"line outside any record: {text[:60]!r}", number)
        current.lines.append((number, text))
    return records, banner


def read_records(sum_path: str | Path) -> list[SummaryRecord]:
    """Every record of a summary file, in order, uninterpreted.

    Useful to inspect a file, and to check that nothing (not even the last line) is lost.

    Raises:
        SummaryParseError: missing, unreadable, binary, or a line outside any record.
    """
    path = Path(sum_path)
    return _split_records(path, _read_text(path))[0]


def _value(path: Path, number: int, text: str) -> tuple[str, str]:
    """Split ``VALUE / Comment`` into its parts (comment empty when absent)."""
    stripped = text.strip()
    if stripped.startswith("/"):
        return "", stripped[1:].strip()
    i = stripped.find(" /")
    if i < 0:
        return stripped, ""
    return stripped[:i].strip(), stripped[i + 2 :].lstrip("/").strip()


def _key_value(path: Path, number: int, text: str) -> tuple[str, str]:
    """Split ``KEY = VALUE // Comment`` or ``KEY = VALUE / Comment``."""
    m = _KV.match(text.strip())
    if m is None:
        raise SummaryParseError(path, f"expected 'KEY = VALUE' in a CONFIGURATION record, got {text[:60]!r}", number)
    rest = m[2]
    for sep in (" //", " /"):
        i = rest.find(sep)
        if i >= 0:
            rest = rest[:i]
            break
    return m[1], rest.strip()


def _time(path: Path, number: int, value: str) -> datetime:
    """``2004-06-17T10:38:28.000`` (UTC) as an aware datetime."""
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise SummaryParseError(path, f"not a time (YYYY-MM-DDThh:mm:ss[.sss]): {value!r}", number)


def _int(path: Path, number: int, value: str, what: str) -> int:
    if not value.isdigit():
        raise SummaryParseError(path, f"{what} must be a whole number, got {value!r}", number)
    return int(value)


def _yes_no(path: Path, number: int, value: str, what: str) -> bool:
    if value not in ("Y", "N"):
        raise SummaryParseError(path, f"{what} must be Y or N, got {value!r}", number)
    return value == "Y"
