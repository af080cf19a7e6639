"""The little of FITS the orchestrator reads itself: HDU headers, and a binary table's columns.

After every SAS call the runner checks each product's HDUs, and a re-run reads every
observation's calibration index (twice: is it stale, what does it list) before deciding
there is nothing to do. astropy builds a full object model for that: 39 ms for a real
32-HDU event list, 33 ms for a 118-row CALINDEX, which made a no-op check of 2,000
observations take over a minute. This reads the fixed-format cards (FITS standard 4.1-4.2)
and seeks over the data (4.4.1); a table's rows are one numpy view (7.3).
tests/unit/test_fitsread.py checks it against astropy on the real SAS files of xmm-samples.
"""

from __future__ import annotations

__all__ = ["Hdu", "find", "read_hdus", "table_columns"]

import math
import os
import re
from typing import Any, BinaryIO

_BLOCK = 2880
_CARD = 80
#: TFORM type code -> numpy type of one element (big-endian); P/Q descriptors kept as bytes.
_TYPES = {"L": "S1", "X": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8",
          "C": ">c8", "M": ">c16", "P": "V8", "Q": "V16"}
_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")


class Hdu:
    """One HDU: its cards (keyword -> value as text, strings unquoted) and where its data lies."""

    __slots__ = ("cards", "data_offset", "data_bytes")

    def __init__(self, cards: dict[str, str], data_offset: int, data_bytes: int) -> None:
        self.cards = cards
        self.data_offset = data_offset
        self.data_bytes = data_bytes

    @property
    def name(self) -> str | None:
        return self.cards.get("EXTNAME")


def read_hdus(path: str | os.PathLike[str]) -> list[Hdu]:
    """Every HDU of a FITS file, after checking that each one's data is all in the file.

    Raises:
        ValueError: not a FITS file, a header without END, or data cut short.
        OSError: the file cannot be read.
    """
    hdus: list[Hdu] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        while fh.tell() < size:
            cards = _header(fh, first=not hdus)
            naxes = [int(cards.get(f"NAXIS{i + 1}", "0")) for i in range(int(cards.get("NAXIS", "0")))]
            elements = 0 if not naxes else int(cards.get("PCOUNT", "0")) + math.prod(naxes)
            data = abs(int(cards.get("BITPIX", "8"))) // 8 * int(cards.get("GCOUNT", "1")) * elements
            start = fh.tell()
            end = start + -(-data // _BLOCK) * _BLOCK
            if end > size:
                raise ValueError(f"HDU {len(hdus)}'s data is cut short ({size} bytes, {end} needed)")
            hdus.append(Hdu(cards, start, data))
            fh.seek(end)
    if not hdus:
        raise ValueError("empty file")
    return hdus


def _header(fh: BinaryIO, *, first: bool) -> dict[str, str]:
    """One header's cards, read up to its END card."""
    cards: dict[str, str] = {}
    while len(block := fh.read(_BLOCK)) == _BLOCK:
        if first and fh.tell() == _BLOCK and block[:9] != b"SIMPLE  =":
            raise ValueError("no SIMPLE card")
        text = block.decode("ascii", errors="replace")
        for i in range(0, _BLOCK, _CARD):
            card = text[i:i + _CARD]
            key = card[:8].rstrip()
            if key == "END":
                return cards
            if card[8:10] == "= ":
                raw = card[10:].strip()
                # a string ends at its closing quote (no keyword read here has a quote in it)
                value = raw[1:].split("'", 1)[0].rstrip() if raw.startswith("'") else raw.split("/", 1)[0].strip()
                cards.setdefault(key, value)
    raise ValueError("a header with no END card (cut short?)")


def table_columns(path: str | os.PathLike[str], hdu: Hdu, names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The named columns of a binary table HDU, as Python values (strings stripped of trailing
    blanks; TSCAL and TZERO applied).

    Raises:
        ValueError: not a binary table, a column missing, or a TFORM this reader does not know.
    """
    import numpy as np

    cards = hdu.cards
    if cards.get("XTENSION") != "BINTABLE":
        raise ValueError(f"HDU {hdu.name or '?'} is not a binary table")
    fields: list[tuple[Any, ...]] = []
    index = {}
    for i in range(1, int(cards.get("TFIELDS", "0")) + 1):
        form = _TFORM.match(cards.get(f"TFORM{i}", ""))
        if form is None:
            raise ValueError(f"column {i} of {hdu.name}: TFORM {cards.get(f'TFORM{i}')!r} not understood")
        repeat = int(form.group(1) or "1")
        code = form.group(2)
        if code == "A":
            fields.append((f"c{i}", f"S{repeat}"))
        elif code == "X":
            fields.append((f"c{i}", "u1", (-(-repeat // 8),)))
        else:
            fields.append((f"c{i}", _TYPES[code], (repeat,)) if repeat != 1 else (f"c{i}", _TYPES[code]))
        index[cards.get(f"TTYPE{i}", "")] = i
    width, rows = int(cards["NAXIS1"]), int(cards["NAXIS2"])
    dtype = np.dtype(fields)
    if dtype.itemsize != width:
        raise ValueError(f"{hdu.name}: the columns' TFORMs make {dtype.itemsize} bytes a row, NAXIS1 says {width}")
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"{hdu.name}: no column {', '.join(missing)}")
    with open(path, "rb") as fh:
        fh.seek(hdu.data_offset)
        table = np.frombuffer(fh.read(width * rows), dtype=dtype, count=rows)
    out: dict[str, list[Any]] = {}
    for name in names:
        i = index[name]
        col = table[f"c{i}"]
        if col.dtype.kind == "S":
            out[name] = [v.decode("ascii", errors="replace").rstrip() for v in col]
            continue
        scale, zero = float(cards.get(f"TSCAL{i}", "1")), float(cards.get(f"TZERO{i}", "0"))
        values = col * scale + zero if (scale, zero) != (1.0, 0.0) else col
        out[name] = values.tolist()
    return out


def find(hdus: list[Hdu], name: str) -> Hdu:
    """The first HDU named ``name`` (EXTNAME). Raises KeyError when there is none."""
    for h in hdus:
        if h.name == name:
            return h
    raise KeyError(f"no {name} extension")

