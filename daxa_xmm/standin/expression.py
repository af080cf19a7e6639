"""evselect's selection language (SAS selectlib), evaluated over a FITS table with numpy.

The stand-in's evselect must select exactly the rows real evselect selects, or every product
downstream (cleaned lists, images) is wrong in ways no test would see. So this is a real
tokenizer and recursive-descent parser that builds a small AST, then a vectorised evaluation of
that AST against a table's columns. What it accepts follows the selectlib documentation:

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

__all__ = ["ExpressionError", "Node", "parse", "expand_attributes", "evaluate", "select"]

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
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
            if lit.endswith(".") and _DOT_OP_RE.match(text, m.end() - 1):
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
    args: tuple["Node", ...] = ()
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


# ------------------------------------------------------------------------- attributes
def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value).strip()


def expand_attributes(expression: str, *headers: Mapping[str, Any], max_depth: int = 16) -> str:
    """Replace every ``#NAME`` (but ``#ROW``) by its header value as text, recursively.

    The first header holding the keyword wins (pass the table's header, then the primary).
    This is selectlib's own rule, and the result is what evselect records in ``SLCTEXPR``.

    Raises:
        ExpressionError: ``UnknownAttribute`` for a missing keyword, or on a cycle.
    """

    def lookup(name: str, pos: int, text: str) -> str:
        for h in headers:
            if name in h:
                return _format_value(h[name])
        raise ExpressionError(text, f"attribute #{name} is not in the table header", pos, "UnknownAttribute")

    text = expression
    for _ in range(max_depth):
        if not any(m.group(1).upper() != "ROW" for m in _ATTR_RE.finditer(text)):
            return text
        out, last = [], 0
        for m in _ATTR_RE.finditer(text):
            if m.group(1).upper() == "ROW":
                continue
            out.append(text[last : m.start()])
            out.append(lookup(m.group(1), m.start(), text))
            last = m.end()
        out.append(text[last:])
        text = "".join(out)
    raise ExpressionError(expression, "attribute definitions nest too deeply (a cycle?)", None, "UnknownAttribute")


# -------------------------------------------------------------------------- evaluation
class _Env:
    def __init__(self, text: str, columns: Mapping[str, np.ndarray], nrows: int,
                 gti_loader: Callable[[str], np.ndarray]) -> None:
        self.text = text
        self.columns = {k.upper(): k for k in columns}
        self.data = columns
        self.nrows = nrows
        self.gti_loader = gti_loader

    def fail(self, node: Node, msg: str, code: str) -> ExpressionError:
        return ExpressionError(self.text, msg, node.pos, code)

    def column(self, node: Node) -> np.ndarray:
        key = self.columns.get(str(node.value).upper())
        if key is None:
            raise self.fail(node, f"no column named {node.value!r} in the table", "UnknownColumn")
        arr = np.asarray(self.data[key])
        if arr.ndim != 1:
            raise self.fail(node, f"column {node.value!r} is not a scalar column", "TypeMismatch")
        return arr


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_)) or (isinstance(v, np.ndarray) and v.dtype == bool)


def _num(env: _Env, node: Node) -> Any:
    v = _eval(env, node)
    if _is_bool(v):
        raise env.fail(node, "a number is needed here, not a boolean", "TypeMismatch")
    return v


def _boolean(env: _Env, node: Node) -> Any:
    v = _eval(env, node)
    if not _is_bool(v):
        raise env.fail(node, "a boolean is needed here, not a number", "TypeMismatch")
    return v


def _as_int(env: _Env, node: Node, v: Any) -> Any:
    arr = np.asarray(v)
    if arr.dtype.kind not in "iu":
        raise env.fail(node, "bitwise operators need integer operands", "TypeMismatch")
    return arr.astype(np.int64) if arr.ndim else int(arr)


def _in_interval(x: Any, iv: _Interval) -> Any:
    ok: Any = True
    if iv.lo is not None:
        ok = (x >= iv.lo) if iv.lo_closed else (x > iv.lo)
    if iv.hi is not None:
        ok = ok & ((x <= iv.hi) if iv.hi_closed else (x < iv.hi))
    return np.asarray(ok) if ok is not True else np.True_


def _in_gti(values: Any, intervals: np.ndarray) -> Any:
    t = np.asarray(values, dtype=float)
    if intervals.size == 0:
        return np.zeros(t.shape, dtype=bool)
    iv = intervals[np.argsort(intervals[:, 0], kind="stable")]
    starts = iv[:, 0]
    stops = np.maximum.accumulate(iv[:, 1])  # merged reach of all intervals so far
    idx = np.searchsorted(starts, t, side="right") - 1
    safe = np.clip(idx, 0, None)
    return (idx >= 0) & (t < stops[safe])


def _eval(env: _Env, node: Node) -> Any:  # noqa: C901 - one dispatch on node kind
    k = node.kind
    if k == "num":
        return node.value
    if k == "bool":
        return np.bool_(node.value)
    if k == "col":
        return env.column(node)
    if k == "row":
        return np.arange(1, env.nrows + 1)
    if k == "pair":
        raise env.fail(node, "a (X, Y) pair is only allowed before 'in circle(...)'", "SyntaxError")
    if k == "unary":
        if node.value == "!":
            return ~np.asarray(_boolean(env, node.args[0]))
        v = _num(env, node.args[0])
        return -v if node.value == "-" else v
    if k == "func":
        with np.errstate(all="ignore"):
            return _FUNCS[node.value](np.asarray(_num(env, node.args[0]), dtype=float))
    if k == "in":
        x = _widen(_num(env, node.args[0]))
        out: Any = np.False_
        for iv in node.value:
            out = out | _in_interval(x, iv)
        return out
    if k == "gti":
        values = _num(env, node.args[0]) if node.args else env.column(Node("col", "TIME", pos=node.pos))
        try:
            intervals = env.gti_loader(node.value)
        except ExpressionError:
            raise
        except Exception as exc:  # any I/O or format problem is the expression's error
            raise env.fail(node, f"cannot read GTI table {node.value!r}: {exc}", "GtiTable") from None
        return _in_gti(values, intervals)
    if k == "region":
        raise env.fail(node, f"the stand-in does not evaluate the region shape {node.value}()", "notSupported")
    if k == "circle":
        x0, y0, r, x, y = (_num(env, a) for a in node.args)
        return np.asarray((np.asarray(x, float) - x0) ** 2 + (np.asarray(y, float) - y0) ** 2 <= float(r) ** 2)
    # binary
    op = node.value
    a_node, b_node = node.args
    if op in ("&&", "||"):
        a, b = _boolean(env, a_node), _boolean(env, b_node)
        return (a & b) if op == "&&" else (a | b)
    a, b = _eval(env, a_node), _eval(env, b_node)
    if op in ("==", "!=") and _is_bool(a) and _is_bool(b):
        return (a == b) if op == "==" else (a != b)
    if _is_bool(a) or _is_bool(b):
        raise env.fail(node, f"operator {op!r} needs numbers, not booleans", "TypeMismatch")
    if op in ("&", "|"):
        ia, ib = _as_int(env, a_node, a), _as_int(env, b_node, b)
        return (ia & ib) if op == "&" else (ia | ib)
    with np.errstate(all="ignore"):
        if op in _COMPARE:
            res = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
                   ">": np.greater, ">=": np.greater_equal}[op](_widen(a), _widen(b))
            return np.asarray(res)
        fa, fb = _widen(a), _widen(b)
        if op == "+":
            return fa + fb
        if op == "-":
            return fa - fb
        if op == "*":
            return fa * fb
        if op == "/":
            return np.true_divide(np.asarray(fa, float), np.asarray(fb, float))
        if op == "**":
            return np.power(np.asarray(fa, float), np.asarray(fb, float))
    raise env.fail(node, f"unknown operator {op!r}", "SyntaxError")  # pragma: no cover


def _widen(v: Any) -> Any:
    """Integer columns are widened to int64 so ``PI*1000`` cannot wrap an int16 column."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "iu":
        return v.astype(np.int64)
    if isinstance(v, int) and abs(v) > 2**62:
        return float(v)
    return v


def _default_gti_loader(base_dir: Path | None) -> Callable[[str], np.ndarray]:
    def load(spec: str) -> np.ndarray:
        from astropy.io import fits

        name, ext = spec, None
        m = re.fullmatch(r"(.+?)\[(.+)\]", spec) or re.fullmatch(r"(.+\.fits?(?:\.gz)?):(\w+)", spec, re.IGNORECASE)
        if m:
            name, ext = m.group(1), m.group(2)
        path = Path(name)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        with fits.open(path, memmap=False) as hdul:
            if ext is not None:
                hdu = hdul[int(ext) if ext.isdigit() else ext]
            else:
                hdu = next(
                    (h for h in hdul[1:] if str(h.header.get("EXTNAME", "")).upper().startswith(("STDGTI", "GTI"))),
                    None,
                ) or next((h for h in hdul[1:] if getattr(h, "columns", None) is not None
                           and {"START", "STOP"} <= {c.upper() for c in h.columns.names}), None)
            if hdu is None or getattr(hdu, "columns", None) is None:
                raise ValueError(f"no GTI table in {path}")
            return np.column_stack([np.asarray(hdu.data["START"], float), np.asarray(hdu.data["STOP"], float)]).reshape(-1, 2)

    return load


def evaluate(
    expression: str | Node,
    columns: Mapping[str, Any],
    nrows: int | None = None,
    *,
    source: str | None = None,
    base_dir: Path | None = None,
    gti_loader: Callable[[str], np.ndarray] | None = None,
) -> np.ndarray:
    """Evaluate an attribute-expanded expression to one boolean per row.

    Args:
        expression: the expression text, or an AST from :func:`parse`.
        columns: column name -> 1-D array (a FITS_rec, a dict, an astropy Table...); names
            are matched case-insensitively, as FITS column names are.
        nrows: the table length (taken from the first column when omitted).
        source: the text to quote in errors when ``expression`` is a Node.
        base_dir: where relative ``gti(...)`` file names are looked up (evselect's cwd).
        gti_loader: replaces the FITS reader of ``gti(...)``: spec -> (N, 2) START/STOP.

    Raises:
        ExpressionError: on any problem with the expression or the data it names.
    """
    text = expression if isinstance(expression, str) else (source or "")
    node = parse(expression) if isinstance(expression, str) else expression
    names = list(columns.dtype.names) if hasattr(columns, "dtype") and columns.dtype.names else list(columns.keys())
    view = columns if not hasattr(columns, "dtype") else {n: columns[n] for n in names}
    if nrows is None:
        nrows = len(view[names[0]]) if names else 0
    env = _Env(text, view, nrows, gti_loader or _default_gti_loader(base_dir))
    try:
        result = _eval(env, node)
    except RecursionError:
        raise ExpressionError(text, "expression nests too deeply", None) from None
    except (TypeError, ValueError, OverflowError, FloatingPointError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(text, f"cannot evaluate: {exc}", None, "TypeMismatch") from None
    if not _is_bool(result):
        raise ExpressionError(text, "the expression must be boolean (a selection), not a number", 0, "TypeMismatch")
    return np.broadcast_to(np.asarray(result, dtype=bool), (nrows,)).copy()


def select(
    expression: str,
    columns: Mapping[str, Any],
    header: Mapping[str, Any] | None = None,
    *more_headers: Mapping[str, Any],
    base_dir: Path | None = None,
    gti_loader: Callable[[str], np.ndarray] | None = None,
) -> tuple[np.ndarray, str]:
    """Expand ``#NAME`` attributes from the headers, then evaluate: (row mask, expanded text).

    The expanded text is what evselect writes to ``SLCTEXPR``.
    """
    headers = tuple(h for h in (header, *more_headers) if h is not None)
    expanded = expand_attributes(expression, *headers)
    mask = evaluate(expanded, columns, base_dir=base_dir, gti_loader=gti_loader)
    return mask, expanded

