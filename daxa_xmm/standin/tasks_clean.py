"""Stand-in emanom and espfilt: MOS anomalous-state detection and soft-proton flare filtering."""

from __future__ import annotations

__all__ = ["emanom", "emanom_output", "espfilt", "espfilt_output", "espfilt_names", "sas_major"]

import datetime as dt
import hashlib
import re
from pathlib import Path

from daxa_xmm.standin.common import TASK_VERSIONS, SasExit, TaskContext, atomic_path, info, is_yes

_PREFIX = {"EPN": "pn", "EMOS1": "mos1", "EMOS2": "mos2"}


def sas_major(version: str) -> int:
    """Major SAS version of ``22.1.0-...`` or ``xmmsas_20211130_0941-20.0.0``."""
    if version.startswith("xmmsas_"):
        m = re.search(r"-(\d+)\.\d+\.\d+$", version)
    else:
        m = re.match(r"(\d+)\.", version)
    return int(m.group(1)) if m else 22


def _event_header(path: Path) -> dict[str, object]:
    """The EVENTS header of an event list (SAS error if it is not one)."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            return dict(hdul["EVENTS"].header)
    except (OSError, KeyError, ValueError) as exc:
        raise SasExit("datasetCouldNotBeRead", f"The dataset '{path}' could not be read as an event list: {exc}") from exc


def _stem(hdr: dict[str, object]) -> str:
    """``pnS003`` / ``mos1S001`` from INSTRUME and EXPIDSTR."""
    inst = str(hdr.get("INSTRUME", "")).strip()
    if inst not in _PREFIX:
        raise SasExit("wrongInstrument", f"unsupported instrument '{inst}' (EPIC PN or MOS event list expected)")
    return f"{_PREFIX[inst]}{str(hdr.get('EXPIDSTR', '')).strip()}"


# ----------------------------------------------------------------------------- emanom

def emanom_output(ctx: TaskContext) -> Path:
    """``mos1S001-anom.log``."""
    return ctx.cwd / f"{_stem(_event_header(ctx.path(ctx.param('eventfile'))))}-anom.log"


def emanom(args: dict[str, str], ctx: TaskContext) -> int:
    """Write ``mosNSnnn-anom.log``: one line per CCD with its state, mostly ``G``."""
    from astropy.io import fits

    path = ctx.require_file("eventfile", ctx.param("eventfile"))
    hdr = _event_header(path)
    if not str(hdr.get("INSTRUME", "")).startswith("EMOS"):
        raise SasExit("wrongInstrument", "emanom works on EPIC MOS event lists only")
    with fits.open(path) as hdul:
        ccds = sorted(int(h.name[6:]) for h in hdul if h.name.startswith("STDGTI") and h.name[6:].isdigit())
    digest = hashlib.sha256(f"{hdr.get('OBS_ID')}{hdr.get('INSTRUME')}{hdr.get('EXPIDSTR')}".encode()).digest()
    states = "GGGGGGGGGGIIBOU"
    lines = [f"{ctx.creator(TASK_VERSIONS['emanom'])} anomalous state check",
             f"Event file: {path}", f"keepcorner = {ctx.param('keepcorner')}"]
    for i, ccd in enumerate(ccds):
        state = "G" if ccd == 1 else states[digest[i] % len(states)]
        hr = 0.3 + (digest[i + 8] % 50) / 100
        rate = (digest[i + 16] % 100) / 1000
        lines.append(f"CCD: {ccd}  Status: {state}  Hardness ratio: {hr:.3f}  Corner rate: {rate:.4f}")
    out = emanom_output(ctx)
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return 0


# ---------------------------------------------------------------------------- espfilt

def espfilt_names(stem: str, elow: str, ehigh: str, longnames: bool) -> dict[str, str]:
    """Output names: ``pnS003-gti.fits`` (SAS >= 21) or ``pnS003-gti-2500-8500.fits`` (longnames)."""
    sfx = f"-{elow}-{ehigh}" if longnames else ""
    return {"gti": f"{stem}-gti{sfx}.fits", "allevc": f"{stem}-allevc{sfx}.fits",
            "hist": f"{stem}-hist{sfx}.qdp", "allevcoot": f"{stem}-allevcoot{sfx}.fits"}


def _names(ctx: TaskContext) -> dict[str, str]:
    hdr = _event_header(ctx.path(ctx.param("eventfile")))
    return espfilt_names(_stem(hdr), ctx.param("elow"), ctx.param("ehigh"), is_yes(ctx.param("withlongnames")))


def espfilt_output(ctx: TaskContext) -> Path:
    """The GTI file."""
    return ctx.cwd / _names(ctx)["gti"]


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000")


def _intervals(good, edges) -> list[tuple[float, float]]:
    """Merge consecutive good bins into (start, stop) intervals."""
    out: list[tuple[float, float]] = []
    for i, ok in enumerate(good):
        if not ok:
            continue
        if out and out[-1][1] == edges[i]:
            out[-1] = (out[-1][0], float(edges[i + 1]))
        else:
            out.append((float(edges[i]), float(edges[i + 1])))
    return out


def _filter_by_gti(src: Path, dst: Path, gti: list[tuple[float, float]], creator: str) -> None:
    """Copy an event list keeping only events inside the GTI, with the GTI appended."""
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import gti_hdu

    with fits.open(src) as hdul:
        hdus = [h.copy() for h in hdul]
    ev = hdus[1]
    t = ev.data["TIME"]
    keep = np.zeros(len(t), dtype=bool)
    for a, b in gti:
        keep |= (t >= a) & (t < b)
    new = fits.BinTableHDU(data=ev.data[keep], header=ev.header, name="EVENTS")
    hdus[0].header["CREATOR"] = creator
    with atomic_path(dst) as tmp:
        fits.HDUList([hdus[0], new, *hdus[2:], gti_hdu(gti, "GTI")]).writeto(tmp)


def espfilt(args: dict[str, str], ctx: TaskContext) -> int:
    """Histogram-method flare filtering of one event list.

    Bins the events with ``elow <= PI <= ehigh`` into a light curve of ``binsize`` s,
    takes the median rate and a robust sigma (MAD) and keeps the bins whose rate is below
    ``median + allowsigma * sigma``. Writes the GTI (STDGTI START/STOP), the events within
    it (``-allevc``, and ``-allevcoot`` for the OOT list with withoot=yes) and a QDP
    histogram of the bin rates.
    """
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import gti_hdu

    task = "espfilt"
    version = ctx.sas_version()
    method = ctx.param("method")
    if method not in ("histogram", "ratio"):
        raise SasExit("InvalidParameter", f"method must be histogram or ratio, not '{method}'")
    if method == "histogram" and sas_major(version) <= 19:
        raise SasExit("InvalidParameter", "method=histogram is not available in this version of espfilt (use method=ratio)")
    path = ctx.require_file("eventfile", ctx.param("eventfile"))
    withoot = is_yes(ctx.param("withoot"))
    oot = ctx.require_file("ootfile", ctx.param("ootfile")) if withoot else None
    creator = ctx.creator(TASK_VERSIONS[task])
    tag = creator.split(" ", 1)[1]
    info(task, f"espfilt (espfilt-{TASK_VERSIONS[task]})  {tag.split(' ')[-1]} started:  {_stamp()}")
    info(task, f" ESPFILT: Processing eventlist: {path}")
    try:
        elow, ehigh = float(ctx.param("elow")), float(ctx.param("ehigh"))
        binsize = float(ctx.param("binsize")) if is_yes(ctx.param("withbinning")) else 60.0
        allowsigma = float(ctx.param("allowsigma"))
    except ValueError as exc:
        raise SasExit("InvalidParameter", f"non-numeric value: {exc}") from exc
    with fits.open(path) as hdul:
        ev = hdul["EVENTS"]
        t0, t1 = float(ev.header["TSTART"]), float(ev.header["TSTOP"])
        obsid = str(ev.header.get("OBS_ID", ""))
        data = ev.data
        sel = (data["PI"] >= elow) & (data["PI"] <= ehigh)
        times = np.asarray(data["TIME"][sel], dtype=float)
    names = _names(ctx)
    edges = np.arange(t0, t1 + binsize, binsize)
    counts, _ = np.histogram(times, bins=edges)
    info(task, f" CLEAN_LC: There are {counts.size:12d}  rows in the FOV LC")
    if counts.sum() == 0:
        raise SasExit("noCounts", "All histo counts are zero! Check your FOV Lightcurve!")
    rates = counts / binsize
    med = float(np.median(rates))
    sigma = float(1.4826 * np.median(np.abs(rates - med))) or float(np.sqrt(max(med, 1e-9) / binsize))
    thresh = med + allowsigma * sigma
    good = rates <= thresh
    gti = _intervals(good, edges)
    info(task, f"Normalization = {counts.size:9.3f}")
    info(task, f"Width         = {sigma:9.3f}")
    info(task, f"Center        = {med:9.3f}")
    gti_file = ctx.cwd / names["gti"]
    prim = fits.PrimaryHDU()
    prim.header["CREATOR"] = creator
    with atomic_path(gti_file) as tmp:
        fits.HDUList([prim, gti_hdu(gti, "STDGTI", obsid=obsid)]).writeto(tmp)
    _filter_by_gti(path, ctx.cwd / names["allevc"], gti, creator)
    if oot is not None:
        _filter_by_gti(oot, ctx.cwd / names["allevcoot"], gti, creator)
    hist, hedges = np.histogram(rates, bins=min(50, max(5, counts.size // 4)))
    qdp = ["READ SERR 1", "LABEL X Rate (counts/s)", "LABEL Y Number of bins",
           f"! espfilt stand-in: median {med:.4f} sigma {sigma:.4f} threshold {thresh:.4f}"]
    qdp += [f"{(a + b) / 2:.5f} {(b - a) / 2:.5f} {n}" for a, b, n in zip(hedges[:-1], hedges[1:], hist)]
    with atomic_path(ctx.cwd / names["hist"]) as tmp:
        tmp.write_text("\n".join(qdp) + "\n")
    info(task, " HISTOGRAM_METHOD: Return with no errors")
    info(task, f"espfilt (espfilt-{TASK_VERSIONS[task]})  {tag.split(' ')[-1]} ended:    {_stamp()}")
    return 0
