"""evselect's selection language evaluated over a FITS table with numpy (the stand-in's evselect).

The stand-in's evselect must select exactly the rows real evselect selects, or every product
downstream (cleaned lists, images) is wrong in ways no test would see. The tokenizer and
parser are the core's (:mod:`daxa_xmm.sas.expression`, which also validates user expressions);
this module expands ``#NAME`` attributes and evaluates the AST, vectorised, against a table's
columns. Every problem raises :class:`ExpressionError` and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from daxa_xmm.sas.expression import _ATTR_RE, _COMPARE, _FUNCS, ExpressionError, Node, _Interval, parse

__all__ = ["ExpressionError", "Node", "parse", "expand_attributes", "evaluate", "select"]

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

