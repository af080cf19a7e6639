"""Write small FITS files without astropy: header cards, and binary tables of fixed-width
strings, integers and reals.

Importing astropy costs about half a second of CPU, more than the rest of a stand-in call.
cifbuild (its CALINDEX table, once per observation) and fast mode's placeholders write
their files with this instead. It writes the fixed-format cards of the FITS standard
(section 4.2), with ``''`` escapes and the ``CONTINUE`` convention for long strings, the
reader of :mod:`daxa_xmm.odf.fitsread` in reverse. tests/unit/test_standin_fitswrite.py
reads what it writes back with astropy.
"""

from __future__ import annotations

__all__ = ["Column", "card", "header_block", "primary_hdu", "bintable_hdu"]

import struct
from collections.abc import Sequence

_CARD = 80
_BLOCK = 2880
#: The longest piece of a string per card: 70 value columns, less two quotes and the '&'.
_PIECE = 67
#: Binary-table formats this writes: struct code and width of one value (strings: nA).
_NUMERIC = {"I": ">h", "J": ">i", "K": ">q", "E": ">f", "D": ">d"}

Value = str | bool | int | float


def _pieces(text: str) -> list[str]:
    """``text`` escaped (``'`` doubled), cut into pieces that fit a card, never inside an escape."""
    out, piece = [], ""
    for ch in text:
        esc = "''" if ch == "'" else ch
        if len(piece) + len(esc) > _PIECE:
            out.append(piece)
            piece = ""
        piece += esc
    return [*out, piece]


def card(key: str, value: Value, comment: str = "") -> list[str]:
    """The 80-character card(s) of one keyword: one, or a string continued on CONTINUE cards."""
    if len(key) > 8:
        raise ValueError(f"FITS keyword {key!r} is longer than 8 characters")
    if isinstance(value, str):
        pieces = _pieces(value)
        if len(pieces) > 1:
            first, *rest = pieces
            lines = [f"{key:<8}= '{first}&'"]
            lines += [f"CONTINUE  '{p}&'" for p in rest[:-1]] + [f"CONTINUE  '{rest[-1]}'"]
            return [line.ljust(_CARD) for line in lines]
        text = f"'{pieces[0]:<8}'"
    elif isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        text = f"{value:>20d}"
    else:
        text = f"{value:>20.16G}"
    line = f"{key:<8}= {text}"
    if comment and len(line) + 3 + len(comment) <= _CARD:
        line += f" / {comment}"
    return [line[:_CARD].ljust(_CARD)]


def header_block(cards: Sequence[str]) -> bytes:
    """Cards, then END, padded with blanks to whole 2880-byte blocks."""
    text = "".join(cards) + "END".ljust(_CARD)
    return text.ljust(-(-len(text) // _BLOCK) * _BLOCK).encode("ascii")


def _pad_data(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % _BLOCK)


def primary_hdu(cards: Sequence[str] = ()) -> bytes:
    """A primary header with no data (NAXIS = 0), then ``cards``."""
    base = [*card("SIMPLE", True), *card("BITPIX", 8), *card("NAXIS", 0), *card("EXTEND", True)]
    return header_block([*base, *cards])


class Column:
    """One binary-table column: its name, TFORM (``nA``, ``I``, ``J``, ``K``, ``E``, ``D``),
    unit and one value per row. (A plain class, for the reason given at
    :class:`~daxa_xmm.standin.common.TaskContext`.)"""

    __slots__ = ("name", "form", "values", "unit")

    def __init__(self, name: str, form: str, values: Sequence[Value], unit: str = "") -> None:
        self.name, self.form, self.values, self.unit = name, form, values, unit

    def width(self) -> int:
        if self.form.endswith("A"):
            return int(self.form[:-1] or 1)
        if self.form not in _NUMERIC:
            raise ValueError(f"column {self.name}: TFORM {self.form!r} is not one this writer knows")
        return struct.calcsize(_NUMERIC[self.form])

    def pack(self, value: Value) -> bytes:
        if self.form.endswith("A"):
            raw = str(value).encode("ascii")
            if len(raw) > self.width():
                raise ValueError(f"column {self.name}: {value!r} is longer than {self.form}")
            return raw.ljust(self.width(), b" ")
        return struct.pack(_NUMERIC[self.form], value)


def bintable_hdu(extname: str, columns: Sequence[Column], cards: Sequence[str] = ()) -> bytes:
    """A BINTABLE extension named ``extname`` holding ``columns``, then ``cards``."""
    nrows = len(columns[0].values) if columns else 0
    if any(len(c.values) != nrows for c in columns):
        raise ValueError(f"{extname}: columns of different lengths")
    head = [*card("XTENSION", "BINTABLE"), *card("BITPIX", 8), *card("NAXIS", 2),
            *card("NAXIS1", sum(c.width() for c in columns)), *card("NAXIS2", nrows),
            *card("PCOUNT", 0), *card("GCOUNT", 1), *card("TFIELDS", len(columns))]
    for i, col in enumerate(columns, start=1):
        head += [*card(f"TTYPE{i}", col.name), *card(f"TFORM{i}", col.form)]
        if col.unit:
            head += card(f"TUNIT{i}", col.unit)
    head += card("EXTNAME", extname)
    data = b"".join(col.pack(col.values[r]) for r in range(nrows) for col in columns)
    return header_block([*head, *cards]) + _pad_data(data)
