"""evselect's selection language (SAS selectlib): tokenizer and parser, no evaluation.

The core validates every user expression with this parser before it reaches SAS
(:func:`daxa_xmm.sas.filters.validate_expression`), and the SAS stand-in's evselect evaluates
the AST it builds (:mod:`daxa_xmm.standin.expression`), so what is refused here is exactly
what the stand-in could not select with. A real tokenizer and recursive-descent parser; what
it accepts follows the selectlib documentation:

- logic ``&& || !`` and ``.and. .or. .not.``; constants ``true`` / ``false``;
- comparisons ``== != < <= > >=`` and ``.eq. .ne. .lt. .le. .gt. .ge.``;
- arithmetic ``+ - * / **``, bitwise ``& |``, numbers (``12``, ``.3``, ``1e5``), hexadecimal
  ``0x766ba000`` and binary ``b110`` literals; parentheses;
- ``arith in intervals``: a comma list of ``val``, ``lo:hi``, ``[lo:hi]``, ``(lo:hi]``,
  ``[lo:hi)``, ``(lo:hi)`` with either end open (``[:b]``, ``[a:]``, ``:``), as in
  ``PHA in [0:10],(23:40),99,200:``;
- ``gti(file,COLUMN)`` and ``COLUMN in gti(file)``: rows whose value lies in any
  ``[START, STOP)`` of the file's GTI table (``file[EXT]`` / ``file:EXT`` name it);
- ``#NAME`` table attributes, replaced by their header value *as text* before parsing, which
  is how selectlib defines them (``#XMMEA_EM`` becomes ``(FLAG & 0x766ba000) == 0``; the
  expanded text is what evselect writes to ``SLCTEXPR``); ``#ROW`` is the 1-based row number;
- ``circle(x0,y0,r,X,Y)`` and ``(X,Y) in circle(x0,y0,r)``, the region test products use.

Precedence, loosest first: ``||``, ``&&``, comparisons and ``in``, ``|``, ``&``, ``+ -``,
``* /``, ``**``, unary ``! - +``. Bitwise ``&`` binds tighter than ``!=`` because selectlib's
own example ``FLAG & b110 != 0`` means ``(FLAG & b110) != 0``. Every problem (syntax, unknown
column or attribute, a number where a boolean is needed, a missing GTI file) raises
:class:`ExpressionError`, a :class:`~daxa_xmm.errors.FilterExpressionError`, and nothing else.
"""

from __future__ import annotations

__all__ = ["ExpressionError", "Node", "parse"]

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from daxa_xmm.errors import FilterExpressionError


class ExpressionError(FilterExpressionError):
    """A selection expression that cannot be evaluated; ``code`` is the SAS-style error name.

    Codes: ``SyntaxError``, ``UnknownColumn``, ``UnknownAttribute``, ``TypeMismatch``,
    ``GtiTable`` (the GTI file or table of ``gti(...)`` cannot be read).
    """

    def __init__(self, expression: str, message: str, position: int | None = None, code: str = "SyntaxError") -> None:
        self.code = code
        super().__init__(expression, message, position)


# --------------------------------------------------------------------------------- tokens
_DOT_OPS = {"and": "&&", "or": "||", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_DOT_OP_RE = re.compile(r"\.(and|or|not|eq|ne|lt|le|gt|ge)\.", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DIGITS = frozenset("0123456789")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SYMBOLS = ("&&", "||", "==", "!=", "<=", ">=", "**", "<", ">", "!", "&", "|", "+", "-", "*", "/",
            "(", ")", "[", "]", ",", ":")
_ATTR_RE = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class _Tok:
    kind: str  # NUM, ID, OP, FILE, ATTR, END
    value: Any
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        m = _DOT_OP_RE.match(text, i)
        if m:
            toks.append(_Tok("OP", _DOT_OPS[m.group(1).lower()], i))
            i = m.end()
            continue
        if text.startswith(("0x", "0X"), i):
            m = re.compile(r"0[xX]([0-9a-fA-F]+)").match(text, i)
            if not m:
                raise ExpressionError(text, "bad hexadecimal constant", i)
            toks.append(_Tok("NUM", int(m.group(1), 16), i))
            i = m.end()
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER_RE.match(text, i)
            lit = m.group(0) if m else text[i]
            # "0.eq.FLAG": the dot belongs to the operator, not to the number
            if m is not None and lit.endswith(".") and _DOT_OP_RE.match(text, m.end() - 1):
                lit = lit[:-1]
            end = i + len(lit)
            is_int = re.fullmatch(r"[0-9]+", lit) is not None
            toks.append(_Tok("NUM", (int(lit) if len(lit) < 19 else float(lit)) if is_int else float(lit), i))
            i = end
            continue
        if c == "#":
            m = _IDENT_RE.match(text, i + 1)
            if not m:
                raise ExpressionError(text, "'#' must be followed by an attribute name", i)
            toks.append(_Tok("ATTR", m.group(0), i))
            i = m.end()
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            word = m.group(0)
            if re.fullmatch(r"b[01]+", word):
                toks.append(_Tok("NUM", int(word[1:], 2), i))
            else:
                toks.append(_Tok("ID", word, i))
            i = m.end()
            # gti(FILE ...): the file name is raw text up to the first ',' or ')' outside [].
            if word.lower() == "gti":
                j = i
                while j < n and text[j].isspace():
                    j += 1
                if j < n and text[j] == "(":
                    toks.append(_Tok("OP", "(", j))
                    k, depth = j + 1, 0
                    while k < n and not (depth == 0 and text[k] in ",)"):
                        depth += {"[": 1, "]": -1}.get(text[k], 0)
                        k += 1
                    name = text[j + 1 : k].strip().strip("'\"")
                    if not name:
                        raise ExpressionError(text, "gti() needs a file name", j + 1)
                    toks.append(_Tok("FILE", name, j + 1))
                    i = k
            continue
        for sym in _SYMBOLS:
            if text.startswith(sym, i):
                toks.append(_Tok("OP", sym, i))
                i += len(sym)
                break
        else:
            raise ExpressionError(text, f"unexpected character {c!r}", i)
    toks.append(_Tok("END", None, n))
    return toks


# ------------------------------------------------------------------------------------ AST
@dataclass(frozen=True)
class Node:
    """One AST node: ``kind`` is num, bool, col, row, unary, binary, in, gti, circle."""

    kind: str
    value: Any = None
    args: tuple[Node, ...] = ()
    pos: int = 0


@dataclass(frozen=True)
class _Interval:
    lo: float | None
    hi: float | None
    lo_closed: bool
    hi_closed: bool


_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    # helpers
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def error(self, msg: str, tok: _Tok | None = None) -> ExpressionError:
        return ExpressionError(self.text, msg, (tok or self.tok).pos)

    def is_op(self, *values: str) -> bool:
        return self.tok.kind == "OP" and self.tok.value in values

    def expect(self, value: str) -> _Tok:
        if not self.is_op(value):
            found = "end of expression" if self.tok.kind == "END" else repr(str(self.tok.value))
            raise self.error(f"expected {value!r}, found {found}")
        t = self.tok
        self.i += 1
        return t

    def parse(self) -> Node:
        if self.tok.kind == "END":
            raise self.error("empty expression")
        node = self.or_expr()
        if self.tok.kind != "END":
            raise self.error(f"unexpected {str(self.tok.value)!r}")
        return node

    # grammar, loosest first
    def _binary(self, ops: tuple[str, ...], sub: Callable[[], Node]) -> Node:
        left = sub()
        while self.is_op(*ops):
            t = self.tok
            self.i += 1
            left = Node("binary", t.value, (left, sub()), t.pos)
        return left

    def or_expr(self) -> Node:
        return self._binary(("||",), self.and_expr)

    def and_expr(self) -> Node:
        return self._binary(("&&",), self.compare)

    def compare(self) -> Node:
        left = self.bitor()
        if self.is_op(*_COMPARE):
            t = self.tok
            self.i += 1
            return Node("binary", t.value, (left, self.bitor()), t.pos)
        if self.tok.kind == "ID" and self.tok.value.lower() == "in":
            t = self.tok
            self.i += 1
            return self.in_rhs(left, t.pos)
        return left

    def bitor(self) -> Node:
        return self._binary(("|",), self.bitand)

    def bitand(self) -> Node:
        return self._binary(("&",), self.additive)

    def additive(self) -> Node:
        return self._binary(("+", "-"), self.term)

    def term(self) -> Node:
        return self._binary(("*", "/"), self.power)

    def power(self) -> Node:
        base = self.unary()
        if self.is_op("**"):
            t = self.tok
            self.i += 1
            return Node("binary", "**", (base, self.power()), t.pos)
        return base

    def unary(self) -> Node:
        if self.is_op("!", "-", "+"):
            t = self.tok
            self.i += 1
            return Node("unary", t.value, (self.unary(),), t.pos)
        return self.primary()

    def primary(self) -> Node:
        t = self.tok
        if t.kind == "NUM":
            self.i += 1
            return Node("num", t.value, pos=t.pos)
        if t.kind == "ATTR":
            if t.value.upper() == "ROW":
                self.i += 1
                return Node("row", pos=t.pos)
            raise self.error(f"attribute #{t.value} was not expanded")
        if self.is_op("("):
            self.i += 1
            first = self.or_expr()
            if self.is_op(","):  # (X, Y) in circle(...)
                self.i += 1
                second = self.or_expr()
                self.expect(")")
                return Node("pair", None, (first, second), t.pos)
            self.expect(")")
            return first
        if t.kind == "ID":
            self.i += 1
            low = t.value.lower()
            if low == "true" and not self.is_op("("):
                return Node("bool", True, pos=t.pos)
            if low == "false" and not self.is_op("("):
                return Node("bool", False, pos=t.pos)
            if self.is_op("("):
                return self.call(t)
            return Node("col", t.value, pos=t.pos)
        if t.kind == "END":
            raise self.error("unexpected end of expression")
        raise self.error(f"unexpected {str(t.value)!r}")

    def call(self, name: _Tok) -> Node:
        low = name.value.lower()
        self.expect("(")
        if low == "gti":
            file = self.tok
            if file.kind != "FILE":
                raise self.error("gti() needs a file name")
            self.i += 1
            args: tuple[Node, ...] = ()
            if self.is_op(","):
                self.i += 1
                args = (self.additive(),)
            self.expect(")")
            return Node("gti", file.value, args, name.pos)
        args_list: list[Node] = []
        if not self.is_op(")"):
            args_list.append(self.or_expr())
            while self.is_op(","):
                self.i += 1
                args_list.append(self.or_expr())
        self.expect(")")
        if low == "circle":
            if len(args_list) not in (3, 5):
                raise self.error("circle() takes (x0, y0, r[, X, Y])", name)
            return Node("circle", None, tuple(args_list), name.pos)
        if low in _REGIONS:  # selectlib's other shapes: valid syntax, not evaluated here
            return Node("region", low, tuple(args_list), name.pos)
        if low in _FUNCS:
            if len(args_list) != 1:
                raise self.error(f"{low}() takes one argument", name)
            return Node("func", low, tuple(args_list), name.pos)
        raise self.error(f"unknown function {name.value!r}", name)

    def in_rhs(self, left: Node, pos: int) -> Node:
        if self.tok.kind == "ID" and self.tok.value.lower() == "gti":
            g = self.primary()
            if g.kind != "gti" or g.args:
                raise self.error("'in gti(...)' takes only a file name")
            return Node("gti", g.value, (left,), pos)
        if self.tok.kind == "ID" and self.tok.value.lower() == "circle":
            c = self.primary()
            if left.kind != "pair" or len(c.args) != 3:
                raise self.error("use (X, Y) in circle(x0, y0, r)")
            return Node("circle", None, c.args + left.args, pos)
        intervals = [self.interval()]
        while self.is_op(","):
            self.i += 1
            intervals.append(self.interval())
        return Node("in", tuple(intervals), (left,), pos)

    def bound(self) -> float | None:
        sign = 1
        if self.is_op("-", "+"):
            sign = -1 if self.tok.value == "-" else 1
            self.i += 1
        if self.tok.kind != "NUM":
            if sign == -1:
                raise self.error("expected a number after '-'")
            return None
        v = self.tok.value
        self.i += 1
        return sign * v

    def interval(self) -> _Interval:
        start = self.tok
        lo_closed = True
        bracketed = self.is_op("[", "(")
        if bracketed:
            lo_closed = self.tok.value == "["
            self.i += 1
        lo = self.bound()
        if not self.is_op(":"):
            if lo is None:
                raise self.error("expected a number or ':' in interval", start)
            if bracketed:
                self.expect("]")
            return _Interval(lo, lo, True, True)
        self.i += 1
        hi = self.bound()
        hi_closed = True
        if bracketed:
            if not self.is_op("]", ")"):
                raise self.error("expected ']' or ')' closing the interval")
            hi_closed = self.tok.value == "]"
            self.i += 1
        return _Interval(lo, hi, lo_closed, hi_closed)


#: Region shapes of SAS's selection language besides circle: parsed, not evaluated.
_REGIONS = frozenset({"box", "ellipse", "annulus", "elliptannulus", "polygon", "pie", "sector", "point"})
_FUNCS: dict[str, Callable[[Any], Any]] = {
    "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "int": np.trunc,
}


def parse(expression: str) -> Node:
    """Parse an already attribute-expanded expression into an AST.

    Raises:
        ExpressionError: with the position of the offending token.
    """
    try:
        return _Parser(expression).parse()
    except RecursionError:
        raise ExpressionError(expression, "expression nests too deeply", None) from None
