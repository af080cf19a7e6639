"""evselect selection expressions: the defaults, the builder behind cleaned_evt_lists, a validator.

An expression reaches evselect as one argv element (``expression=...``), never through a
shell, so quoting is not the danger; the dangers are an expression SAS cannot parse (it
fails minutes later, deep in a chain) and an expression that smuggles shell syntax into a
log line a user might paste. :func:`validate_expression` refuses both early, pointing at
the offending character.

The language (evselect's): ``&& || !`` or ``.and. .or. .not.``, comparisons ``== != < <=
> >=`` or ``.eq. .ne. .lt. .le. .gt. .ge.``, ranges ``PI in [500:2000]`` (half-open ``(a:b]``
and ``[a:b)``, open ends ``[:2000]``, comma lists ``CCDNR in 1,2,4``), flag macros
``#XMMEA_EP`` from the event list header, and ``gti(file.fits,TIME)``.

Examples:
    >>> import astropy.units as u
    >>> build_filter_expression("PN", lo_en=0.5 * u.keV, hi_en=2 * u.keV)
    '#XMMEA_EP && (PATTERN <= 4) && (FLAG .eq. 0) && (PI in [500:2000])'
    >>> build_filter_expression("M1", accepted_ccds=[1, 2, 4])
    '#XMMEA_EM && (PATTERN <= 12) && (FLAG .eq. 0) && (CCDNR in 1,2,4)'
"""

from __future__ import annotations

__all__ = [
    "gti_files",
    "PN_DEFAULT",
    "MOS_DEFAULT",
    "PN_DEFAULT_PARTS",
    "MOS_DEFAULT_PARTS",
    "validate_expression",
    "build_filter_expression",
    "compose_expression",
    "to_ev",
]

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daxa_xmm.errors import ConfigError, FilterExpressionError
from daxa_xmm.odf.models import EPIC
from daxa_xmm.units import to_value

#: DAXA's (and the XMM cookbook's) default PN selection: good flags, singles to quadruples;
#: in parts, as DAXA 0.3.7 gives them (process/xmm/assemble.py:702), joined with ``&&``.
PN_DEFAULT_PARTS = ("#XMMEA_EP", "(PATTERN <= 4)", "(FLAG .eq. 0)")
PN_DEFAULT = " && ".join(PN_DEFAULT_PARTS)
#: The MOS default: good flags, all valid patterns (0-12).
MOS_DEFAULT_PARTS = ("#XMMEA_EM", "(PATTERN <= 12)", "(FLAG .eq. 0)")
MOS_DEFAULT = " && ".join(MOS_DEFAULT_PARTS)

# Characters that can occur in an evselect expression. Everything else (; ` $ \ { } ~ ^ %
# ? @, tabs, newlines, non-ASCII) is refused: SAS would reject it, or it is shell syntax.
_ALLOWED = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "_.,:+-*/ =!<>&|#()[]'\""
)
_RANGE = re.compile(r"[\[(][^\[\]()'\"]*:[^\[\]()'\"]*[\])]")
_IN = re.compile(r"(?<![\w.#])in\b\s*", re.IGNORECASE)
_MACRO = re.compile(r"#[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_GTI = re.compile(r"(?<![\w.#])gti\s*\(\s*([^,()]*)\s*,", re.IGNORECASE)
_GTI_FILE = re.compile(r"^(?:[\w./+-]+|'[\w./+-]+'|\"[\w./+-]+\")$")
_OPEN = {"(": ")", "[": "]"}
_CLOSE = {")": "(", "]": "["}


def _mask_ranges(text: str) -> str:
    """Blank out ``in`` ranges (``[a:b]``, ``(a:b]``...) so bracket balance ignores them.

    Lengths are kept, so positions in the masked text are positions in the original.
    """
    chars = list(text)
    for m in _IN.finditer(text):
        pos = m.end()
        while True:
            r = _RANGE.match(text, pos)
            if r is None:
                break
            for i in range(r.start(), r.end()):
                chars[i] = "R"
            pos = r.end()
            sep = re.compile(r"\s*,\s*").match(text, pos)
            if sep is None:
                break
            pos = sep.end()
    return "".join(chars)


def _mask_quotes(expr: str) -> str:
    """Blank the inside of quoted strings; refuse an unterminated quote."""
    chars = list(expr)
    i = 0
    while i < len(expr):
        c = expr[i]
        if c in "'\"":
            end = expr.find(c, i + 1)
            if end < 0:
                raise FilterExpressionError(expr, f"unterminated {c} quote", i)
            for j in range(i + 1, end):
                chars[j] = "Q"
            i = end + 1
        else:
            i += 1
    return "".join(chars)


def validate_expression(expr: str) -> str:
    """Return ``expr`` unchanged if evselect could parse it, else raise with a caret.

    Checks: non-empty; only characters of the selection language; quotes closed; ``()``
    and ``[]`` balanced and matched, where ``in`` ranges may be half-open (``(a:b]``,
    ``[a:b)``); ``gti(file,TIME)`` file names made of plain path characters.

    Args:
        expr: the selection expression, as it will be passed to ``expression=``.

    Returns:
        ``expr``, for chaining.

    Raises:
        FilterExpressionError: with the position of the first problem.

    Examples:
        >>> validate_expression("PI in (500:2000] && (FLAG == 0)")
        'PI in (500:2000] && (FLAG == 0)'
        >>> validate_expression("PI in [500:2000")
        Traceback (most recent call last):
        ...
        daxa_xmm.errors.FilterExpressionError: invalid filter expression: unclosed '['
          PI in [500:2000
                ^
    """
    if not isinstance(expr, str):
        raise FilterExpressionError(repr(expr), f"expected a string, got {type(expr).__name__}")
    if expr in _VALID:  # checked before in this process (a run builds the same few thousands of times)
        return expr
    if not expr.strip():
        raise FilterExpressionError(expr, "the expression is empty", 0)
    for i, c in enumerate(expr):
        if c not in _ALLOWED:
            # shown on one line, one character per character, so the caret stays aligned
            shown = "".join(ch if ch.isprintable() else "?" for ch in expr)
            raise FilterExpressionError(shown, f"character {c!r} cannot occur in a SAS selection expression", i)
    masked = _mask_ranges(_mask_quotes(expr))
    stack: list[tuple[str, int]] = []
    for i, c in enumerate(masked):
        if c in _OPEN:
            stack.append((c, i))
        elif c in _CLOSE:
            if not stack:
                raise FilterExpressionError(expr, f"unbalanced {c!r}: nothing to close", i)
            opener, where = stack.pop()
            if _OPEN[opener] != c:
                raise FilterExpressionError(
                    expr, f"{c!r} closes {opener!r} opened at position {where} (a range needs 'in')", i
                )
    if stack:
        opener, where = stack[-1]
        raise FilterExpressionError(expr, f"unclosed {opener!r}", where)
    for m in _GTI.finditer(expr):
        name = m.group(1).strip()
        if not name or not _GTI_FILE.match(name):
            raise FilterExpressionError(expr, f"gti() file name {name!r} is not a plain path", m.start(1))
    # evselect does not take a single-quoted string inside an expression (FLAG == 'A' passes
    # the shell-safety checks above, then fails in SAS); quoting the whole value, as on a
    # shell command line, is not needed either: the argv reaches SAS without a shell
    quote = _single_quoted(expr)
    if quote is not None:
        raise FilterExpressionError(expr, "single quotes: evselect refuses a single-quoted string, and the "
                                          "expression needs no quotes around it (no shell); use double quotes", quote)
    _check_grammar(expr)
    if len(_VALID) >= _VALID_MAX:
        _VALID.clear()
    _VALID.add(expr)
    return expr


#: Expressions :func:`validate_expression` passed in this process (it is a pure function of
#: the string; one that fails is checked again each time, so its error is always made anew).
_VALID: set[str] = set()
_VALID_MAX = 4096


def _single_quoted(expr: str) -> int | None:
    """Position of the first single quote outside a double-quoted string, or None."""
    in_double = False
    for i, c in enumerate(expr):
        if c == '"':
            in_double = not in_double
        elif c == "'" and not in_double:
            return i
    return None


def gti_files(expr: str) -> list[str]:
    """The file names of every ``gti(file,TIME)`` in ``expr`` (files evselect will open)."""
    return [m.group(1).strip() for m in _GTI.finditer(expr)]


def _check_grammar(expr: str) -> None:
    """Parse ``expr`` with the selection-language grammar (``PATTERN <== 4`` fails here).

    The grammar is the core's (daxa_xmm.sas.expression), which the SAS stand-in evaluates with.
    ``#NAME`` flag
    macros are defined in each event list's header, not known yet: they are masked as
    ``true`` of the same width, which keeps error positions right.
    """
    from daxa_xmm.sas.expression import ExpressionError, parse

    masked = _MACRO.sub(lambda m: "true".ljust(len(m.group())), expr)
    # a quoted string is one operand (SAS compares string columns with it): the grammar
    # only needs to see a value there, so each becomes a number of the same width
    masked = _QUOTED.sub(lambda m: "0".ljust(len(m.group())), masked)
    try:
        parse(masked)
    except ExpressionError as exc:
        raise FilterExpressionError(expr, exc.reason, exc.position) from None


def to_ev(value: Any, name: str) -> float | None:
    """An energy in eV, read by :mod:`daxa_xmm.units`'s one rule (a Quantity or a string
    like ``"0.5 keV"``; a bare number is refused: it could be keV or eV); None stays None.

    Raises:
        ConfigError: naming ``name``, for a value without a unit or of another physical type,
            and for an energy that is negative or not finite.
    """
    if value is None:
        return None
    ev = to_value(value, "eV", name)
    if not ev >= 0 or ev == float("inf"):
        raise ConfigError(f"{name}={value} must be a finite energy >= 0")
    return ev


def _pi(ev: float) -> str:
    """PI channels are integer eV."""
    return str(int(round(ev)))


def compose_expression(
    inst: str,
    *,
    lo_ev: float | None = None,
    hi_ev: float | None = None,
    user_expr: str | Sequence[str] | None = None,
    gti_file: str | Path | None = None,
    accepted_ccds: Sequence[int] | None = None,
) -> str:
    """:func:`build_filter_expression` with energies already in eV (floats), for builders.

    Raises:
        ConfigError: for a bad instrument, energy range or CCD list.
        FilterExpressionError: when the result is not a valid expression.
    """
    if inst not in EPIC:
        raise ConfigError(f"inst={inst!r}: filter expressions are built for PN, M1 or M2")
    if user_expr is None:
        base = PN_DEFAULT if inst == "PN" else MOS_DEFAULT
    else:
        if isinstance(user_expr, str):
            parts = [user_expr]
        elif isinstance(user_expr, (list, tuple)) and all(isinstance(p, str) for p in user_expr):
            parts = list(user_expr)
        else:
            raise ConfigError(f"filter expression must be a string or a list of strings, got {user_expr!r}")
        if not parts:
            raise ConfigError("filter expression list is empty")
        for p in parts:
            validate_expression(p)
        # an 'or' at top level would bind looser than the && we append: keep it together
        wrapped = [f"({p.strip()})" if re.search(r"\|\||\.or\.", p, re.IGNORECASE) else p.strip() for p in parts]
        base = " && ".join(wrapped)
    pieces = [base]
    if (lo_ev is None) != (hi_ev is None):
        raise ConfigError("lo_en and hi_en must be given together (both or neither)")
    if lo_ev is not None and hi_ev is not None:
        if not hi_ev > lo_ev or _pi(hi_ev) == _pi(lo_ev):
            raise ConfigError(f"hi_en ({hi_ev:g} eV) must be larger than lo_en ({lo_ev:g} eV)")
        pieces.append(f"(PI in [{_pi(lo_ev)}:{_pi(hi_ev)}])")
    if gti_file is not None:
        name = str(gti_file)
        if not _GTI_FILE.match(name):
            raise ConfigError(f"gti_file {name!r} has characters a SAS expression cannot hold (use [A-Za-z0-9_./+-])")
        pieces.append(f"gti({name},TIME)")
    if accepted_ccds is not None:
        if inst == "PN":
            raise ConfigError("accepted_ccds applies to MOS (emanom's anomalous-state filter), not PN")
        ccds = list(accepted_ccds)
        if not ccds:
            raise ConfigError(f"{inst}: no CCD accepted (accepted_ccds is empty): nothing would be kept")
        if not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 7 for c in ccds):
            raise ConfigError(f"accepted_ccds={ccds!r}: MOS CCD numbers are integers 1-7")
        pieces.append(f"(CCDNR in {','.join(str(c) for c in sorted(set(ccds)))})")
    return validate_expression(" && ".join(pieces))


def build_filter_expression(
    inst: str,
    *,
    lo_en: Any = None,
    hi_en: Any = None,
    user_expr: str | Sequence[str] | None = None,
    gti_file: str | Path | None = None,
    accepted_ccds: Sequence[int] | None = None,
) -> str:
    """The evselect expression cleaned_evt_lists uses for one PN or MOS event list.

    Args:
        inst: ``PN``, ``M1`` or ``M2``; picks PN_DEFAULT or MOS_DEFAULT.
        lo_en: lower energy bound (Quantity or ``"0.5 keV"``); appended as ``PI in [lo:hi]``
            in eV. Give both bounds or neither.
        hi_en: upper energy bound, larger than lo_en.
        user_expr: replaces the default; a list is joined with ``&&``.
        gti_file: espfilt's GTI file, appended as ``gti(<file>,TIME)``.
        accepted_ccds: MOS only: CCDs emanom found in an acceptable state, appended as
            ``CCDNR in 1,2,4``.

    Returns:
        The validated expression.

    Raises:
        ConfigError: naming lo_en/hi_en/gti_file/accepted_ccds when one is invalid.
        FilterExpressionError: when the user expression (or the result) is invalid.
    """
    return compose_expression(
        inst,
        lo_ev=to_ev(lo_en, "lo_en"),
        hi_ev=to_ev(hi_en, "hi_en"),
        user_expr=user_expr,
        gti_file=gti_file,
        accepted_ccds=accepted_ccds,
    )
