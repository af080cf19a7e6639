"""Is a product what the next step will read? Checked before a call is recorded ok, and again
(cheaply) before a recorded product is trusted on a re-run.

A SAS task can exit 0 and still leave a broken file (a full disk, a killed writer, a bug):
main recorded such a file ok and trusted it forever. Each :class:`~daxa_xmm.sas.calls.OutputSpec`
may name a check (``OutputSpec.check``); what each check asks for is what the reader of that
product needs, from the sources in docs/SAS_FIDELITY.md:

- ``events``: an ``EVENTS`` table with ``TIME`` and ``PI`` (evselect, espfilt, merge read
  these; the real cleaned lists in xmm-samples have them).
- ``gti``: a table with ``START`` and ``STOP`` (evselect's ``gti(file,TIME)``).
- ``attitude``: the ``ATTHK`` table (epchain's output-files page: "atthk.dat ... containing the
  entire attitude information (ATTHK)"), which eexpmap reads.
- ``calindex``: the ``CALINDEX`` table every task reads through SAS_CCF.
- ``image``: a 2-d primary array (eexpmap reads the image's grid).
- ``summary``: an odfingest summary that parses to the end (a truncated one is redone).

:func:`check_product` opens the file (after the call); :func:`looks_intact` is the cheap
re-run test: a FITS file must start with ``SIMPLE  =`` and be a whole number of 2880-byte
blocks (a truncated FITS file almost never is), a summary must parse.
"""

from __future__ import annotations

__all__ = ["CHECKS", "check_product", "looks_intact"]

import os
from pathlib import Path

from daxa_xmm.odf.fitsread import read_hdus

#: check name -> (HDU name or None for the primary array, columns it must have)
CHECKS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "events": ("EVENTS", ("TIME", "PI")),
    "gti": ("*", ("START", "STOP")),
    "attitude": ("ATTHK", ()),
    "calindex": ("CALINDEX", ()),
    "image": (None, ()),
    "summary": ("", ()),
}

_BLOCK = 2880


def check_product(path: str | os.PathLike[str], check: str) -> str | None:
    """Why ``path`` fails ``check``, or None when it is fit for the next step."""
    path = Path(path)
    if check not in CHECKS:
        raise ValueError(f"unknown product check {check!r}; choose from {sorted(CHECKS)}")
    if check == "summary":
        return _summary_problem(path)
    hdu_name, columns = CHECKS[check]
    try:
        hdus = read_hdus(path)  # checks that every HDU's data is all there (its NAXISn read)
    except (OSError, ValueError) as exc:
        return f"{path.name}: not a readable FITS file ({exc})"
    if hdu_name is None:
        shape = [hdus[0].integer(f"NAXIS{i + 1}") for i in range(hdus[0].integer("NAXIS"))]
        return None if len(shape) == 2 and 0 not in shape else f"{path.name}: no 2-d image in the primary HDU"
    tables = [h for h in hdus[1:] if hdu_name == "*" or h.name == hdu_name]
    if not tables:
        return f"{path.name}: " + ("no table" if hdu_name == "*" else f"no {hdu_name} extension")
    for h in tables:
        names = {v for k, v in h.cards.items() if k.startswith("TTYPE")}
        if set(columns) <= names:
            return None
    return f"{path.name}: no {hdu_name if hdu_name != '*' else ''} table with the columns {', '.join(columns)}"


def looks_intact(path: str | os.PathLike[str], check: str | None) -> bool:
    """The cheap test of a recorded product before a re-run trusts it (no FITS parsing)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if check is None:
        return True
    if check == "summary":
        return _summary_problem(path) is None
    if size == 0 or size % _BLOCK:
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def _summary_problem(path: Path) -> str | None:
    from daxa_xmm.errors import DaxaXmmError
    from daxa_xmm.odf.summary import read_odf_summary

    try:
        read_odf_summary(path)
    except (DaxaXmmError, OSError, ValueError) as exc:
        return f"{path.name}: not a complete odfingest summary ({str(exc).splitlines()[0]})"
    return None
