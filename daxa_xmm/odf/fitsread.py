"""The little of FITS daxa-xmm reads itself: headers, and a binary table's columns.

After every SAS call the runner checks each product's HDUs; a re-run reads every
observation's calibration index before deciding there is nothing to do; the stand-in reads
one header or two of every ODF constituent in each call. astropy builds a full object model
for that: 39 ms for a real 32-HDU event list, 33 ms for a 118-row CALINDEX, and about half a
second of import in every stand-in process. This reads the fixed-format cards (FITS
standard 4.1-4.2: strings with ``''`` escapes and the ``CONTINUE`` convention for long ones,
logicals, integers and reals), seeks over the data (4.4.1), and views a table's rows with
numpy (7.3). tests/unit/test_fitsread.py and tests/unit/test_standin_fitshead.py check it
against astropy on the real SAS files of xmm-samples and on synthetic ODFs.
"""

from __future__ import annotations

__all__ = ["Hdu", "column_chunks", "find", "primary_header", "read_hdus", "table_columns"]

import math
import os
import re

#: typing.TYPE_CHECKING without importing typing, which every stand-in call would pay for
#: (mypy treats a name TYPE_CHECKING as true); as in daxa_xmm/standin/faults.py.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import gzip
    from collections.abc import Iterator
    from typing import Any, BinaryIO

_BLOCK = 2880
_CARD = 80
#: TFORM type code -> numpy type of one element (big-endian); P/Q descriptors kept as bytes.
_TYPES = {"L": "S1", "X": "u1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8",
          "C": ">c8", "M": ">c16", "P": "V8", "Q": "V16"}
_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")
_INT = re.compile(r"^[+-]?\d+$")
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


class Hdu:
    """One HDU: its cards (keyword -> str, int, float, bool, or None for a blank value) and
    where its data lies in the file."""

    __slots__ = ("cards", "data_offset", "data_bytes")

    def __init__(self, cards: dict[str, object], data_offset: int, data_bytes: int) -> None:
        self.cards = cards
        self.data_offset = data_offset
        self.data_bytes = data_bytes

    @property
    def name(self) -> str | None:
        name = self.cards.get("EXTNAME")
        return name if isinstance(name, str) else None

    def integer(self, key: str, default: int = 0) -> int:
        """An integer keyword (NAXISn, PCOUNT...), ``default`` when absent."""
        value = self.cards.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{key} = {value!r} is not an integer")
        return value


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
            hdu = Hdu(_parse_cards(_header_text(fh, first=not hdus)), fh.tell(), 0)
            naxes = [hdu.integer(f"NAXIS{i + 1}") for i in range(hdu.integer("NAXIS"))]
            elements = 0 if not naxes else hdu.integer("PCOUNT") + math.prod(naxes)
            hdu.data_bytes = abs(hdu.integer("BITPIX", 8)) // 8 * hdu.integer("GCOUNT", 1) * elements
            end = hdu.data_offset + -(-hdu.data_bytes // _BLOCK) * _BLOCK
            if end > size:
                raise ValueError(f"HDU {len(hdus)}'s data is cut short ({size} bytes, {end} needed)")
            hdus.append(hdu)
            fh.seek(end)
    if not hdus:
        raise ValueError("empty file")
    return hdus


def primary_header(path: str | os.PathLike[str]) -> dict[str, object]:
    """Keyword -> value of the primary header (gzip read transparently).

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not a FITS file, or a card cannot be parsed (the message names the file).
    """
    try:
        with open(path, "rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                raw.seek(0)
                return _parse_cards(_header_text(raw, first=True))
            import gzip

            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as fh:
                return _parse_cards(_header_text(fh, first=True))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _header_text(fh: BinaryIO | gzip.GzipFile, *, first: bool) -> str:
    """One header's cards as text, read block by block up to and including its END card."""
    blocks: list[str] = []
    while len(block := fh.read(_BLOCK)) == _BLOCK:
        if first and not blocks and block[:9] != b"SIMPLE  =":
            raise ValueError("not a FITS file (no SIMPLE card)")
        text = block.decode("ascii", errors="replace")
        blocks.append(text)
        for i in range(0, _BLOCK, _CARD):
            if text[i:i + 8] == "END     ":
                return "".join(blocks)[: (len(blocks) - 1) * _BLOCK + i + _CARD]
    raise ValueError("a header with no END card: not a FITS file, or cut short")


def _parse_cards(text: str) -> dict[str, object]:
    """Keyword -> value of a header's cards (commentary cards left out; blank values None)."""
    cards = [text[i : i + _CARD] for i in range(0, len(text), _CARD)]
    out: dict[str, object] = {}
    i = 0
    while i < len(cards):
        card, i = cards[i], i + 1
        if card[8:10] != "= ":
            continue  # COMMENT, HISTORY, blank, END, or a CONTINUE with nothing to extend
        key = card[:8].rstrip()
        field = card[10:].lstrip()
        if not field.startswith("'"):
            out[key] = _value(field.split("/", 1)[0].strip())
            continue
        value = _string(field)
        while value.endswith("&") and i < len(cards) and cards[i].startswith("CONTINUE"):
            value, i = value[:-1] + _string(cards[i][8:].lstrip()), i + 1
        out[key] = value.rstrip()
    return out


def _string(field: str) -> str:
    """The value of a card field that starts with a quote (``''`` is a quote)."""
    quoted = _QUOTED.match(field)
    if quoted is None:
        raise ValueError(f"unterminated string in card field {field!r}")
    return quoted.group(1).replace("''", "'")


def _value(text: str) -> object:
    """A value that is not a string: logical, integer, real, or None when blank."""
    if text in ("T", "F"):
        return text == "T"
    if not text:
        return None
    if _INT.match(text):  # (not int() alone: it would take "1_000")
        return int(text)
    return float(text.replace("D", "E").replace("d", "e"))


def _row_dtype(hdu: Hdu) -> tuple[Any, dict[str, int]]:
    """The numpy dtype of one row of a binary table HDU, and each column's number by name.

    Raises:
        ValueError: not a binary table, or a TFORM this reader does not know, or TFORMs that
            do not add up to NAXIS1.
    """
    import numpy as np

    cards = hdu.cards
    if cards.get("XTENSION") != "BINTABLE":
        raise ValueError(f"HDU {hdu.name or '?'} is not a binary table")
    fields: list[tuple[Any, ...]] = []
    index = {}
    for i in range(1, hdu.integer("TFIELDS") + 1):
        form = _TFORM.match(str(cards.get(f"TFORM{i}", "")))
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
        index[str(cards.get(f"TTYPE{i}", ""))] = i
    dtype = np.dtype(fields)
    width = hdu.integer("NAXIS1")
    if dtype.itemsize != width:
        raise ValueError(f"{hdu.name}: the columns' TFORMs make {dtype.itemsize} bytes a row, NAXIS1 says {width}")
    return dtype, index


def _scaled(hdu: Hdu, i: int, col: Any) -> Any:
    """A numeric column's values with its TSCALn and TZEROn applied (unchanged without them)."""
    cards = hdu.cards
    scale, zero = float(str(cards.get(f"TSCAL{i}", 1))), float(str(cards.get(f"TZERO{i}", 0)))
    return col * scale + zero if (scale, zero) != (1.0, 0.0) else col


def _column_numbers(hdu: Hdu, index: dict[str, int], names: tuple[str, ...]) -> list[int]:
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"{hdu.name}: no column {', '.join(missing)}")
    return [index[n] for n in names]


def table_columns(path: str | os.PathLike[str], hdu: Hdu, names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The named columns of a binary table HDU, as Python values (strings stripped of trailing
    blanks; TSCAL and TZERO applied).

    Raises:
        ValueError: not a binary table, a column missing, or a TFORM this reader does not know.
    """
    import numpy as np

    dtype, index = _row_dtype(hdu)
    numbers = _column_numbers(hdu, index, names)
    rows = hdu.integer("NAXIS2")
    with open(path, "rb") as fh:
        fh.seek(hdu.data_offset)
        table = np.frombuffer(fh.read(dtype.itemsize * rows), dtype=dtype, count=rows)
    out: dict[str, list[Any]] = {}
    for name, i in zip(names, numbers, strict=True):
        col = table[f"c{i}"]
        if col.dtype.kind == "S":
            out[name] = [v.decode("ascii", errors="replace").rstrip() for v in col]
            continue
        out[name] = _scaled(hdu, i, col).tolist()
    return out


def column_chunks(path: str | os.PathLike[str], hdu: Hdu, name: str, rows_per_chunk: int = 1 << 20) -> Iterator[Any]:
    """One numeric column of a binary table HDU, as numpy arrays of at most ``rows_per_chunk``
    rows each (TSCAL and TZERO applied), read chunk by chunk.

    For event lists of millions of rows: memory stays at one chunk of whole rows (a FITS
    table is stored row after row, so every byte of the table is read, but only this column
    is kept), and no Python list of every value is made.

    Raises:
        ValueError: not a binary table, no such column, a text column, or a TFORM this
            reader does not know.
    """
    import numpy as np

    dtype, index = _row_dtype(hdu)
    (i,) = _column_numbers(hdu, index, (name,))
    if dtype[f"c{i}"].kind in "SV":
        raise ValueError(f"{hdu.name}: column {name} is not numeric")
    rows, width = hdu.integer("NAXIS2"), dtype.itemsize
    step = max(1, rows_per_chunk)
    with open(path, "rb") as fh:
        fh.seek(hdu.data_offset)
        for start in range(0, rows, step):
            count = min(step, rows - start)
            chunk = np.frombuffer(fh.read(width * count), dtype=dtype, count=count)
            yield _scaled(hdu, i, chunk[f"c{i}"])


def find(hdus: list[Hdu], name: str) -> Hdu:
    """The first HDU named ``name`` (EXTNAME). Raises KeyError when there is none."""
    for h in hdus:
        if h.name == name:
            return h
    raise KeyError(f"no {name} extension")

