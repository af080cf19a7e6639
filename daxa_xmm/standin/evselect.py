"""Stand-in ``evselect``: filter an event list and bin count images exactly as SAS does.

Every product the pipeline makes from events (cleaned lists, band images, then exposure maps
and the report) goes through evselect, so the stand-in reproduces SAS's behaviour, checked
pixel for pixel against a real SAS image (tests/unit/test_standin_evselect.py):

- ``table=file[:EVENTS]`` is read with astropy; ``expression`` is evaluated by
  :mod:`daxa_xmm.standin.expression` after ``#NAME`` attributes are expanded from the
  table's header (then the primary header).
- ``withfilteredset=yes`` (given, or implied by a given ``filteredset``) writes
  ``filteredset``: every extension copied, the table's rows filtered (or, with
  ``destruct=no``, all rows kept and ``flagcolumn`` set to 1 on selected rows), ``SLCTEXPR``
  recorded; with ``updateexposure=yes`` and a ``gti(...)`` term ANDed at
  the top of the expression, the per-CCD ``STDGTInn`` tables are intersected with that GTI
  and ``ONTIMEnn``/``ONTIME``/``LIVETInn``/``LIVETIME``/``EXPOSURE`` follow.
- ``withimageset=yes`` (given, or implied by ``imageset`` or ``xcolumn``) writes
  ``imageset``: a 2-D histogram of ``xcolumn``/``ycolumn``.
  SAS's grid, derived from the real image: pixel 1 is centred on ``min + (bin - 1) / 2``, so
  it holds the integer values ``min .. min + bin - 1`` (edges at ``min - 0.5 + k * bin``),
  and ``n = ceil((max - min + 1) / bin)`` pixels (512 for 3649..48106 at 87). An event falls
  in pixel ``floor((v - min + 0.5) / bin)`` when that index is inside the grid. With
  ``imagebinning=imageSize`` the bin is ``(max - min + 1) / size``; without ranges the
  column's legal limits ``TLMIN``/``TLMAX`` (else the data's extent) are the range.
  ``squarepixels=yes`` uses the larger bin on both axes. The header carries the sky WCS
  from the column's ``TCRPX/TCRVL/TCDLT/TCTYP/TCUNI`` keywords, the physical ``...L`` WCS,
  ``LTV``/``LTM``, ``SLCTEXPR``, ``XPROC0`` and ``ONTIMEnn``/``EXPOSURE``, in SAS's order.

Not reproduced: spectrum, rate and histogram sets (a SAS error ``notSupported``) and the
data-subspace (``DSTYPn``) keywords.
"""

from __future__ import annotations

__all__ = [
    "AxisGrid",
    "split_table_spec",
    "filter_table",
    "axis_grid",
    "bin_image",
    "image_header",
    "run",
]

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path, info, is_yes, switched_on, warning
from daxa_xmm.standin.expression import ExpressionError, Node, parse, select
from daxa_xmm.standin.params import PARAMS

TASK = "evselect"
VERSION = "3.72"

_DTYPES = {"int8": np.uint8, "int16": np.int16, "int32": np.int32, "real32": np.float32, "real64": np.float64}


@dataclass(frozen=True)
class AxisGrid:
    """One image axis: ``n`` pixels of ``binsize`` starting at physical value ``vmin``.

    Pixel ``i`` (1-based) is centred on ``vmin + (i - 1) * binsize + (binsize - 1) / 2``.
    """

    vmin: float
    binsize: float
    n: int

    @property
    def center1(self) -> float:
        """Physical value at the centre of pixel 1 (SAS's ``CRVALnL``)."""
        return self.vmin + (self.binsize - 1) / 2

    def index(self, values: np.ndarray) -> np.ndarray:
        """0-based pixel index of each value (may fall outside ``0..n-1``)."""
        return np.floor((np.asarray(values, dtype=float) - self.vmin + 0.5) / self.binsize).astype(np.int64)


def split_table_spec(spec: str) -> tuple[str, str | None]:
    """``file.fits:EVENTS`` or ``file.fits[EVENTS]`` -> (file, block); no block -> None."""
    m = re.fullmatch(r"(.+)\[([^\]]+)\]", spec)
    if m:
        return m.group(1), m.group(2)
    head, sep, tail = spec.rpartition(":")
    if sep and head and re.fullmatch(r"[A-Za-z0-9_]+", tail) and not Path(spec).exists():
        return head, tail
    return spec, None


def filter_table(
    data: Any, header: Mapping[str, Any], expression: str, *more_headers: Mapping[str, Any], base_dir: Path | None = None
) -> tuple[np.ndarray, str]:
    """Evaluate ``expression`` on a table: (boolean row mask, attribute-expanded expression)."""
    return select(expression or "true", data, header, *more_headers, base_dir=base_dir)


def _legal_range(header: Mapping[str, Any], colnum: int | None, values: np.ndarray) -> tuple[float, float]:
    if colnum is not None and f"TLMIN{colnum}" in header and f"TLMAX{colnum}" in header:
        return float(header[f"TLMIN{colnum}"]), float(header[f"TLMAX{colnum}"])
    if values.size:
        return float(np.nanmin(values)), float(np.nanmax(values))
    return 1.0, 1.0


def axis_grid(binning: str, vmin: float, vmax: float, binsize: float, size: int) -> AxisGrid:
    """SAS's grid for one axis (see the module docstring); ``binning`` is binSize or imageSize."""
    span = vmax - vmin + 1
    if binning.lower() == "binsize":
        if binsize <= 0:
            raise SasExit("invalidBinSize", f"image bin size must be positive, got {binsize}")
        return AxisGrid(vmin, binsize, max(1, math.ceil(span / binsize - 1e-9)))
    if size <= 0:
        raise SasExit("invalidImageSize", f"image size must be positive, got {size}")
    return AxisGrid(vmin, span / size, size)


def bin_image(x: np.ndarray, y: np.ndarray, xgrid: AxisGrid, ygrid: AxisGrid, dtype: Any = np.float64) -> np.ndarray:
    """Count events per pixel: an array of shape ``(ygrid.n, xgrid.n)`` (FITS row = y)."""
    ix, iy = xgrid.index(x), ygrid.index(y)
    keep = (ix >= 0) & (ix < xgrid.n) & (iy >= 0) & (iy < ygrid.n)
    flat = np.bincount(iy[keep] * xgrid.n + ix[keep], minlength=xgrid.n * ygrid.n)
    return flat.reshape(ygrid.n, xgrid.n).astype(dtype)


def _colnum(header: Mapping[str, Any], name: str) -> int | None:
    for i in range(1, int(header.get("TFIELDS", 0)) + 1):
        if str(header.get(f"TTYPE{i}", "")).strip().upper() == name.upper():
            return i
    return None


def image_header(
    table_header: Mapping[str, Any], xcol: str, ycol: str, xgrid: AxisGrid, ygrid: AxisGrid, expanded: str
) -> tuple[list[tuple[str, Any, str]], list[str]]:
    """The image keywords SAS writes after the copied primary keywords, and the missing-WCS columns."""
    cards: list[tuple[str, Any, str]] = [
        ("SLCTEXPR", expanded, "Filtering expression used by evselect"),
        ("HDUCLASS", "OGIP", "Format conforms to OGIP/GSFC conventions"),
        ("HDUCLAS1", "IMAGE", "File contains an Image"),
        ("HDUCLAS2", "TOTAL", "Gross Image"),
        ("HDUVERS1", "1.1.0", "Version of format"),
    ]
    no_wcs: list[str] = []
    for axis, col, grid in ((1, xcol, xgrid), (2, ycol, ygrid)):
        n = _colnum(table_header, col)
        keys = [f"TC{k}{n}" for k in ("TYP", "RPX", "RVL", "DLT")]
        if n is not None and all(k in table_header for k in keys):
            crpix = (float(table_header[f"TCRPX{n}"]) - grid.center1) / grid.binsize + 1
            cards += [
                (f"CTYPE{axis}", table_header[f"TCTYP{n}"], "Coord. type: " + ("RA" if axis == 1 else "DEC") + " tangent plane projection"),
                (f"CRPIX{axis}", crpix, "WCS reference pixel"),
                (f"CRVAL{axis}", float(table_header[f"TCRVL{n}"]), f"[deg] coord. at {'XY'[axis - 1]} axis ref. pixel"),
                (f"CUNIT{axis}", table_header.get(f"TCUNI{n}", "deg"), f"Physical units of {'XY'[axis - 1]} axis"),
                (f"CDELT{axis}", float(table_header[f"TCDLT{n}"]) * grid.binsize, "WCS pixel size"),
            ]
        else:
            no_wcs.append(col)
        cards += [
            (f"CTYPE{axis}L", col, "WCS coordinate name"),
            (f"CRPIX{axis}L", 1, "WCS reference pixel"),
            (f"CRVAL{axis}L", float(grid.center1), "WCS reference pixel value"),
            (f"CDELT{axis}L", float(grid.binsize), "WCS pixel size"),
            (f"LTV{axis}", 1 - grid.center1 / grid.binsize, ""),
            (f"LTM{axis}_{axis}", 1 / grid.binsize, ""),
        ]
    cards += [
        ("WCSNAMEL", "PHYSICAL", "WCS L name"),
        ("WCSAXESL", 2, "No. of axes for WCS L"),
        ("LTM1_2", 0, ""),
        ("LTM2_1", 0, ""),
    ]
    return cards, no_wcs


# ------------------------------------------------------------------------------ exposure
def _top_gti_terms(node: Node) -> list[Node]:
    """gti(...) nodes ANDed at the top of the expression (only those restrict exposure)."""
    if node.kind == "gti":
        return [node]
    if node.kind == "binary" and node.value == "&&":
        return _top_gti_terms(node.args[0]) + _top_gti_terms(node.args[1])
    return []


def _intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = [(max(s1, s2), min(e1, e2)) for s1, e1 in a for s2, e2 in b if min(e1, e2) > max(s1, s2)]
    return np.array(sorted(out), dtype=float).reshape(-1, 2)


def _read_gti(spec: str, base_dir: Path) -> np.ndarray:
    from daxa_xmm.standin.expression import _default_gti_loader

    return _default_gti_loader(base_dir)(spec)


def _update_exposure(hdul: fits.HDUList, events: fits.BinTableHDU, gti_specs: list[str], base_dir: Path) -> None:
    """Intersect STDGTInn with the expression's GTIs and update ONTIME/LIVETIME/EXPOSURE."""
    if not gti_specs:
        return
    limits = _read_gti(gti_specs[0], base_dir)
    for spec in gti_specs[1:]:
        limits = _intersect(limits, _read_gti(spec, base_dir))
    ontimes: dict[int, float] = {}
    for i, hdu in enumerate(hdul):
        m = re.fullmatch(r"STDGTI(\d\d)", str(hdu.header.get("EXTNAME", "")).strip())
        if not m or not isinstance(hdu, fits.BinTableHDU):
            continue
        ccd = int(m.group(1))
        old = np.column_stack([hdu.data["START"], hdu.data["STOP"]]).astype(float).reshape(-1, 2)
        new = _intersect(old, limits)
        cols = fits.ColDefs([fits.Column(name=c.name, format=c.format, unit=c.unit,
                                         array=new[:, k]) for k, c in enumerate(hdu.columns[:2])])
        table = fits.BinTableHDU.from_columns(cols, header=hdu.header)
        ontime = float(np.sum(new[:, 1] - new[:, 0]))
        table.header["ONTIME"] = ontime
        hdul[i] = table
        ontimes[ccd] = ontime
    h = events.header
    for ccd, ontime in ontimes.items():
        key = f"ONTIME{ccd:02d}"
        old_on = float(h.get(key, 0.0) or 0.0)
        if key in h:
            h[key] = ontime
        live = f"LIVETI{ccd:02d}"
        if live in h and old_on > 0:
            h[live] = float(h[live]) * ontime / old_on
    per_ccd = [float(h[f"ONTIME{c:02d}"]) for c in ontimes if f"ONTIME{c:02d}" in h]
    if per_ccd:
        central = min(ontimes)  # the central CCD is 1 for MOS; PN's ONTIME tracks its first CCD
        if "ONTIME" in h:
            h["ONTIME"] = ontimes[central]
        if "LIVETIME" in h and f"LIVETI{central:02d}" in h:
            h["LIVETIME"] = float(h[f"LIVETI{central:02d}"])
        if "EXPOSURE" in h:
            h["EXPOSURE"] = max(per_ccd)


# ----------------------------------------------------------------------------------- run
def _command_record(params: Mapping[str, str]) -> str:
    """The ``XPROC0`` value: the full command as SAS records it, version tag at the end."""
    parts = [TASK]
    for name in PARAMS[TASK]:
        v = params[name]
        parts.append(f"{name}={v}" if v and " " not in v else f"{name}='{v}'")
    return " ".join(parts) + f" # ({TASK}-{VERSION})"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000")


def _int_param(params: Mapping[str, str], name: str) -> float:
    try:
        return float(params[name])
    except ValueError:
        raise SasExit("invalidParameter", f"parameter {name}={params[name]!r} is not a number") from None


def _open_table(ctx: TaskContext, spec: str) -> tuple[fits.HDUList, int]:
    name, block = split_table_spec(spec)
    path = ctx.require_file("table", name)
    try:
        hdul = fits.open(path, memmap=False)
    except OSError as exc:
        raise SasExit("datasetCouldNotBeRead", f"The dataset '{name}' could not be read: {exc}") from None
    if block is None:
        index = next((i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)), None)
    else:
        index = next((i for i, h in enumerate(hdul) if str(h.header.get("EXTNAME", "")).strip().upper() == block.upper()), None)
    if index is None:
        hdul.close()
        raise SasExit("noSuchBlock", f"The dataset '{name}' has no table block {block or ''}".rstrip())
    return hdul, index


def _primary_cards(primary: fits.Header) -> list[fits.Card]:
    skip = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "CREATOR", "DATE", "HISTORY", "COMMENT", ""}
    return [c for c in primary.cards if c.keyword not in skip and not re.match(r"^(XPROC|XDAL)\d+$", c.keyword)]


def run(args: dict[str, str], ctx: TaskContext) -> int:
    """Run evselect with the given parameters (``args`` holds only those given)."""
    params = {**PARAMS[TASK], **args}
    if not params["table"]:
        raise SasExit("missingParameter", "parameter table has no value")
    for unsupported in ("withspectrumset", "withrateset", "withhistogramset"):
        if is_yes(params[unsupported]):
            raise SasExit("notSupported", f"the stand-in evselect does not make {unsupported[4:]} products")
    hdul, index = _open_table(ctx, params["table"])
    with hdul:
        table: fits.BinTableHDU = hdul[index]
        data = table.data if table.data is not None else np.zeros(0, dtype=[("TIME", float)])
        expression = params["expression"] if params["filtertype"].lower() == "expression" else "true"
        try:
            mask, expanded = filter_table(data, table.header, expression, hdul[0].header, base_dir=ctx.cwd)
            node = parse(expanded)
        except ExpressionError as exc:
            raise SasExit(exc.code, str(exc).replace("\n", " ")) from None
        info(TASK, f"selected {int(mask.sum())} rows from the input table.")
        record = _command_record(params)
        if switched_on(args, params["withfilteredset"], "withfilteredset", "filteredset"):
            _write_filtered(ctx, params, hdul, index, mask, expanded, node, record)
        if switched_on(args, params["withimageset"], "withimageset", "imageset", "xcolumn"):
            _write_image(ctx, params, hdul, index, mask, expanded, record)
    return 0


def _write_filtered(ctx: TaskContext, params: Mapping[str, str], hdul: fits.HDUList, index: int,
                    mask: np.ndarray, expanded: str, node: Node, record: str) -> None:
    table = hdul[index]
    out = fits.HDUList([h.copy() for h in hdul])
    header = table.header.copy()
    if is_yes(params["destruct"]):
        new = fits.BinTableHDU(data=table.data[mask], header=header)
    else:
        flag = params["flagcolumn"]
        cols = [c for c in table.columns if c.name.upper() != flag.upper()]
        cols.append(fits.Column(name=flag, format="B", array=mask.astype(np.uint8)))
        new = fits.BinTableHDU.from_columns(fits.ColDefs(cols), header=header)
    new.header["SLCTEXPR"] = (expanded, "Filtering expression used by evselect")
    out[index] = new
    if is_yes(params["updateexposure"]) and is_yes(params["filterexposure"]):
        try:
            _update_exposure(out, new, [g.value for g in _top_gti_terms(node)], ctx.cwd)
        except (OSError, KeyError, ValueError) as exc:
            raise SasExit("GtiTable", f"cannot update exposure from the expression's GTI: {exc}") from None
    out[0].header["XPROC0"] = record
    out[0].header.add_history(f"Modified by {TASK} ({TASK}-{VERSION}) at {_now()[:19]}")
    target = ctx.path(params["filteredset"])
    with atomic_path(target) as tmp:
        out.writeto(tmp, output_verify="silentfix")


def _write_image(ctx: TaskContext, params: Mapping[str, str], hdul: fits.HDUList, index: int,
                 mask: np.ndarray, expanded: str, record: str) -> None:
    table = hdul[index]
    h = table.header
    xcol, ycol = params["xcolumn"], params["ycolumn"]
    names = {n.upper(): n for n in table.columns.names}
    for col in (xcol, ycol):
        if col.upper() not in names:
            raise SasExit("noSuchColumn", f"The table has no column {col} (parameter {'x' if col == xcol else 'y'}column)")
    x = np.asarray(table.data[names[xcol.upper()]], dtype=float)
    y = np.asarray(table.data[names[ycol.upper()]], dtype=float)
    binning = params["imagebinning"]
    grids = []
    for axis, col, values in (("x", xcol, x), ("y", ycol, y)):
        if is_yes(params[f"with{axis}ranges"]):
            lo, hi = _int_param(params, f"{axis}imagemin"), _int_param(params, f"{axis}imagemax")
        else:
            lo, hi = _legal_range(h, _colnum(h, col), values)
        if hi < lo:
            raise SasExit("invalidRange", f"{axis}imagemax {hi} is below {axis}imagemin {lo}")
        grids.append((lo, hi, _int_param(params, f"{axis}imagebinsize"), int(_int_param(params, f"{axis}imagesize"))))
    (xlo, xhi, xb, xs), (ylo, yhi, yb, ys) = grids
    xg, yg = axis_grid(binning, xlo, xhi, xb, xs), axis_grid(binning, ylo, yhi, yb, ys)
    if is_yes(params["squarepixels"]) and xg.binsize != yg.binsize:
        b = max(xg.binsize, yg.binsize)
        xg, yg = axis_grid("binSize", xlo, xhi, b, 0), axis_grid("binSize", ylo, yhi, b, 0)
    dtype_name = params["imagedatatype"].lower() if is_yes(params["withimagedatatype"]) else "real64"
    if dtype_name not in _DTYPES:
        raise SasExit("invalidParameter", f"imagedatatype={params['imagedatatype']} is not one of Int8 Int16 Int32 Real32 Real64")
    image = bin_image(x[mask], y[mask], xg, yg, _DTYPES[dtype_name])
    cards, no_wcs = image_header(h, xcol, ycol, xg, yg, expanded)
    for col in no_wcs:
        warning(TASK, "NoWCS", f"No WCS information available for image column {col}.")
    primary = fits.PrimaryHDU(data=image)
    ph = primary.header
    ph["XPROC0"] = record
    ph["CREATOR"] = (f"{TASK} ({TASK}-{VERSION})", "name of code that created this file")
    ph["DATE"] = (_now(), "creation date")
    copied = _primary_cards(hdul[0].header)
    for card in copied:
        ph.append(card)
    ph.add_history(f"Created by {TASK} ({TASK}-{VERSION}) at {_now()[:19]}")
    ph["XMMSEP"] = (len(copied), f"{len(copied)} primary image keywords follow")
    for key, value, comment in cards:
        ph[key] = (value, comment)
    for key in [k for k in h if re.fullmatch(r"ONTIME\d\d", k)]:
        ph[key] = (h[key], "Sum of GTIs for a particular CCD")
    ontimes = [float(h[k]) for k in h if re.fullmatch(r"ONTIME\d\d", k)]
    if ontimes:
        ph["EXPOSURE"] = (max(ontimes), "max of ONTIMEnn values")
    out = fits.HDUList([primary] + [hdu.copy() for hdu in hdul[1:]
                                    if re.fullmatch(r"GTI\d{5}", str(hdu.header.get("EXTNAME", "")).strip())])
    target = ctx.path(params["imageset"])
    with atomic_path(target) as tmp:
        out.writeto(tmp, output_verify="silentfix")

