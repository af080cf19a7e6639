"""Stand-in merge and eexpmap: combining sub-exposures and exposure maps."""

from __future__ import annotations

__all__ = ["merge", "merge_output", "eexpmap", "eexpmap_output"]

from pathlib import Path

from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path, is_yes
from daxa_xmm.standin.tasks import TASKS


def merge_output(ctx: TaskContext) -> Path:
    """The outset path."""
    return ctx.path(ctx.param("outset"))


def _gtis(hdul) -> list[tuple[float, float]]:
    """All GTI intervals of a list (STDGTInn, GTI, STDGTI extensions)."""
    out: list[tuple[float, float]] = []
    for h in hdul[1:]:
        if h.name.startswith("STDGTI") or h.name == "GTI":
            out += [(float(a), float(b)) for a, b in zip(h.data["START"], h.data["STOP"], strict=True)]
    return out


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sorted union of intervals."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def merge(args: dict[str, str], ctx: TaskContext) -> int:
    """Concatenate two event lists of one instrument (sorted by TIME) and merge their GTIs."""
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import gti_hdu

    p1 = ctx.require_file("set1", ctx.param("set1"))
    p2 = ctx.require_file("set2", ctx.param("set2"))
    out = merge_output(ctx)
    if out.resolve() in (p1.resolve(), p2.resolve()):
        # ESAS cookbook: "you are not allowed to have the output file name being the same as
        # one of the input file names"
        raise SasExit("outsetIsInput", f"outset {out.name} is one of the input datasets")
    if out.exists():
        # DAXA 0.3.7 gives every link of its merge chain a new name because merge will not
        # overwrite an existing outset: the stand-in takes that reading
        raise SasExit("outsetExists", f"the output dataset {out.name} already exists")
    with fits.open(p1) as h1, fits.open(p2) as h2:
        e1, e2 = h1["EVENTS"], h2["EVENTS"]
        i1, i2 = str(e1.header.get("INSTRUME", "")).strip(), str(e2.header.get("INSTRUME", "")).strip()
        if i1 != i2:
            raise SasExit("incompatibleInstruments", f"cannot merge event lists of {i1} ({p1.name}) and {i2} ({p2.name})")
        o1, o2 = e1.header.get("OBS_ID"), e2.header.get("OBS_ID")
        if o1 != o2 and not is_yes(ctx.param("mergedifferentobs")):
            raise SasExit("differentObservations", f"{p1.name} and {p2.name} come from different observations; set mergedifferentobs=yes")
        if e1.columns.names != e2.columns.names:
            raise SasExit("incompatibleColumns", "the two event lists have different columns")
        data = np.concatenate([np.asarray(e1.data), np.asarray(e2.data)])
        data = data[np.argsort(data["TIME"], kind="stable")]
        hdr = e1.header.copy()
        gti = _union(_gtis(h1) + _gtis(h2))
        ccds = sorted({int(h.name[6:]) for hd in (h1, h2) for h in hd[1:]
                       if h.name.startswith("STDGTI") and h.name[6:].isdigit()})
        per_ccd = {c: _union([(float(a), float(b)) for hd in (h1, h2) if f"STDGTI{c:02d}" in hd
                              for a, b in zip(hd[f"STDGTI{c:02d}"].data["START"], hd[f"STDGTI{c:02d}"].data["STOP"], strict=True)])
                   for c in ccds}
        prim = h1[0].header.copy()
        new = fits.BinTableHDU.from_columns(e1.columns, nrows=len(data), header=hdr)
        for name in data.dtype.names or ():
            new.data[name] = data[name]
    new.header["TSTART"] = min(float(e1.header["TSTART"]), float(e2.header["TSTART"]))
    new.header["TSTOP"] = max(float(e1.header["TSTOP"]), float(e2.header["TSTOP"]))
    prim["CREATOR"] = ctx.creator(TASKS["merge"].version)
    hdus = [fits.PrimaryHDU(header=prim), new]
    hdus += [gti_hdu(per_ccd[c], f"STDGTI{c:02d}", inst=i1, ccd=c) for c in ccds]
    if not ccds:
        hdus.append(gti_hdu(gti, "STDGTI", inst=i1))
    with atomic_path(out) as tmp:
        fits.HDUList(hdus).writeto(tmp)
    return 0


def eexpmap_output(ctx: TaskContext) -> Path:
    """The expimageset path."""
    return ctx.path(ctx.param("expimageset"))


def eexpmap(args: dict[str, str], ctx: TaskContext) -> int:
    """Exposure map on the image's grid: GTI time x vignetting, zero outside the FOV."""
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import FOV_RADIUS, SKY_CENTRE

    for name in ("imageset", "attitudeset", "eventset", "expimageset"):
        if not ctx.args.get(name):
            raise SasExit("missingParameter", f"parameter {name} has no value")
    img = ctx.require_file("imageset", ctx.param("imageset"))
    ctx.require_file("attitudeset", ctx.param("attitudeset"))
    evp = ctx.require_file("eventset", ctx.param("eventset"))
    for name in ("pimin", "pimax"):
        try:
            float(ctx.param(name))
        except ValueError as exc:
            raise SasExit("InvalidParameter", f"{name} must be a number, not '{ctx.param(name)}'") from exc
    with fits.open(img) as hdul:
        hdr = hdul[0].header.copy()
        shape = hdul[0].data.shape if hdul[0].data is not None else None
    if shape is None or len(shape) != 2:
        raise SasExit("noImage", f"{img.name} has no 2-d image in its primary array")
    with fits.open(evp) as hdul:
        ev = hdul["EVENTS"].header
        gtis = [h for h in hdul[1:] if h.name.startswith("STDGTI") or h.name == "GTI"]
        exposure = max((float((h.data["STOP"] - h.data["START"]).sum()) for h in gtis), default=0.0)
        if not gtis:
            exposure = float(ev.get("TSTOP", 0.0)) - float(ev.get("TSTART", 0.0))
    ny, nx = shape
    # pixel -> sky X/Y through the image's physical WCS (LTV/LTM as evselect writes), else centre it
    ltm = float(hdr.get("LTM1_1", 1.0)) or 1.0
    ltv1, ltv2 = float(hdr.get("LTV1", nx / 2 - SKY_CENTRE / ltm)), float(hdr.get("LTV2", ny / 2 - SKY_CENTRE / ltm))
    jj, ii = np.mgrid[1:ny + 1, 1:nx + 1]
    skyx, skyy = (ii - ltv1) / ltm, (jj - ltv2) / ltm
    r = np.hypot(skyx - SKY_CENTRE, skyy - SKY_CENTRE)
    vig = 1.0 - 0.5 * (r / FOV_RADIUS) ** 2 if is_yes(ctx.param("withvignetting")) else np.ones_like(r)
    expmap = np.where(r <= FOV_RADIUS, exposure * vig, 0.0).astype(np.float32)
    out_hdr = hdr.copy()
    for key in ("BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BSCALE", "BZERO"):
        out_hdr.remove(key, ignore_missing=True)
    out_hdr["CREATOR"] = ctx.creator(TASKS["eexpmap"].version)
    out_hdr["EXPOSURE"] = (exposure, "[s] GTI exposure of the event list")
    out_hdr["BUNIT"] = "s"
    with atomic_path(eexpmap_output(ctx)) as tmp:
        fits.PrimaryHDU(data=expmap, header=out_hdr).writeto(tmp)
    return 0
