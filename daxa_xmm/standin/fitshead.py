"""A FITS file's primary header as a dict, without astropy.

odfingest reads a header or two of every ODF constituent and nothing else of it; importing
astropy for that costs about half a second of CPU in every call, more than the rest of the
task. This reads the fixed-format cards of the FITS standard (section 4.2): strings, with
``''`` escapes and the ``CONTINUE`` convention for long ones, logicals, integers and reals.
tests/unit/test_standin_fitshead.py checks it against astropy on synthetic ODFs and on the
real SAS files of xmm-samples.
"""

from __future__ import annotations

__all__ = ["primary_header"]

import gzip
import re
from pathlib import Path

_CARD = 80
_BLOCK = 2880
_INT = re.compile(r"^[+-]?\d+$")


def _read_blocks(path: Path) -> str:
    """The header blocks, up to and including the one with END (gzip read transparently)."""
    with open(path, "rb") as raw:
        packed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        fh = gzip.GzipFile(fileobj=raw) if packed else raw
        blocks: list[str] = []
        while len(block := fh.read(_BLOCK)) == _BLOCK:
            text = block.decode("ascii", errors="replace")
            if not blocks and not text.startswith("SIMPLE  ="):
                raise ValueError(f"{path}: not a FITS file (no SIMPLE card)")
            blocks.append(text)
            for i in range(0, _BLOCK, _CARD):
                if text[i : i + 8] == "END     ":
                    return "".join(blocks)[: (len(blocks) - 1) * _BLOCK + i + _CARD]
    raise ValueError(f"{path}: no END card: not a FITS file, or cut short")


def _string(field: str) -> str:
    """The value of a card field that starts with a quote (``''`` is a quote)."""
    out: list[str] = []
    i = 1
    while i < len(field):
        if field[i] == "'":
            if field[i + 1 : i + 2] != "'":
                return "".join(out)
            i += 1
        out.append(field[i])
        i += 1
    raise ValueError(f"unterminated string in card field {field!r}")


def _value(field: str) -> object:
    text = field.split("/", 1)[0].strip()
    if text in ("T", "F"):
        return text == "T"
    if not text:
        return None
    if _INT.match(text):
        return int(text)
    return float(text.replace("D", "E").replace("d", "e"))


def primary_header(path: Path) -> dict[str, object]:
    """Keyword -> value of the primary header (commentary cards left out; blank values None).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a FITS file, or a card cannot be parsed.
    """
    text = _read_blocks(path)
    cards = [text[i : i + _CARD] for i in range(0, len(text), _CARD)]
    out: dict[str, object] = {}
    i = 0
    while i < len(cards):
        card, i = cards[i], i + 1
        key = card[:8].strip()
        if card[8:10] != "= ":
            continue  # COMMENT, HISTORY, blank, END, or a CONTINUE with nothing to extend
        field = card[10:].lstrip()
        if not field.startswith("'"):
            out[key] = _value(field)
            continue
        value = _string(field)
        while value.endswith("&") and i < len(cards) and cards[i].startswith("CONTINUE"):
            value, i = value[:-1] + _string(cards[i][8:].lstrip()), i + 1
        out[key] = value.rstrip()
    return out
