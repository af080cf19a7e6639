"""The PROPOSAL record of an ODF's ``SUM.ASC`` (or of the odfingest summary that copies it):
target name and pointing.

DAXA takes an observation's RA, Dec and target from the XMM-Newton Science Archive's table;
with the ODFs on disk the same facts are in the PROPOSAL record, so a local archive can be
filtered on position and target without a network. The record is free text with a few
``VALUE / Comment`` lines among the PI's address; fields are found by their comments, as
in the real sample (``9.9728195 / Target Right Ascension``). RA there is in **hours** (the
sample's RXCJ0958.3-1103 is at 9.97 h = 149.6 deg) and Dec in degrees; both are returned in
degrees. The boresight (where the telescope pointed) is preferred, the target position is
the fallback, as the archive's table gives the pointing.
"""

from __future__ import annotations

__all__ = ["Proposal", "read_proposal"]

import math
from dataclasses import dataclass
from pathlib import Path

from daxa_xmm.errors import SummaryParseError
from daxa_xmm.odf.summary_records import _read_text, _split_records, _value

_RA_HOURS_TO_DEG = 15.0


@dataclass(frozen=True)
class Proposal:
    """What the PROPOSAL record says of the pointing.

    Attributes:
        target: the target name as the proposal gives it ("" when absent).
        ra_deg: RA of the pointing in degrees (NaN when absent).
        dec_deg: Dec of the pointing in degrees (NaN when absent).
    """

    target: str = ""
    ra_deg: float = math.nan
    dec_deg: float = math.nan


def _number(path: Path, line: int, value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SummaryParseError(path, f"{what} must be a number, got {value!r}", line) from None


def read_proposal(path: str | Path) -> Proposal | None:
    """The PROPOSAL record of a SUM.ASC or SUM.SAS file, or None when it has none.

    Raises:
        SummaryParseError: the file cannot be read, or a position is not a number.
    """
    p = Path(path)
    records, _ = _split_records(p, _read_text(p), strict=False)
    rec = next((r for r in records if r.kind == "PROPOSAL"), None)
    if rec is None:
        return None
    found: dict[str, tuple[int, str]] = {}
    for number, text in rec.lines:
        value, comment = _value(p, number, text)
        if comment and value:
            found.setdefault(comment.lower(), (number, value))

    def coordinate(names: tuple[str, ...], scale: float) -> float:
        for name in names:
            if name in found:
                line, value = found[name]
                return _number(p, line, value, name) * scale
        return math.nan

    ra = coordinate(("boresight right ascension", "target right ascension"), _RA_HOURS_TO_DEG)
    dec = coordinate(("boresight declination", "target declination"), 1.0)
    target = found.get("target name", (0, ""))[1]
    return Proposal(target=target, ra_deg=ra, dec_deg=dec)
