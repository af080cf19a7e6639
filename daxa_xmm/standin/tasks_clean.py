"""Stand-in emanom and espfilt: MOS anomalous-state detection and soft-proton flare filtering.

Written from the sources in docs/SAS_FIDELITY.md, not from daxa_xmm/steps/:

- emanom (emanom algorithm page; ESAS cookbook's emanom reference): loops over chips 2-7
  only ("since chip 1 has no corner data"); with ``writekeys=yes`` (the default) it writes
  ANOMHRn, ANOMHEn and ANOMFLn into the header of its input event list; with ``writelog``
  it writes the log DAXA 0.3.7 reads (``mos1S001-anom.log``); with ``keepcorner=yes`` (the
  default) it keeps the corner list (``cornerfile`` or ``temp_corner.fits``).
- espfilt: the histogram and the ratio methods exist in every release the pages cover
  (SAS 15, 18, 21, 22); the QDP plot is made by the histogram method only (espfilt page:
  "A QDP plot of the lightcurves are created if one is using the histogram method").
  SAS >= 20 takes the parameters of the real SAS 20.0.0 Executing line (xmm-samples);
  older SAS takes DAXA 0.3.7's ``eventset=`` form and writes band-suffixed names at its
  default band, as DAXA expects. With ``withlongnames=yes`` (SAS 20) the GTI, clean list
  and QDP carry the band, ``mos1S001-gti-2500-8500.fits`` (the real SAS 20 log); the PN
  out-of-time list is written as DAXA 0.3.7 expects it, ``pnS003-allevcoot.fits``.
"""

from __future__ import annotations

__all__ = ["EMANOM_CHIPS", "emanom", "emanom_output", "espfilt", "espfilt_output", "espfilt_names"]

import datetime as dt
import hashlib
from pathlib import Path

from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path, info, is_yes
from daxa_xmm.standin.params import sas_major
from daxa_xmm.standin.tasks import TASKS

_PREFIX = {"EPN": "pn", "EMOS1": "mos1", "EMOS2": "mos2"}


def _event_header(path: Path) -> dict[str, object]:
    """The EVENTS header of an event list, over its primary header (SAS error if it is not one):
    a real list carries INSTRUME and EXPIDSTR in both, fast mode's placeholders in the primary."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            return {**dict(hdul[0].header), **dict(hdul["EVENTS"].header)}
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


#: The chips emanom examines (its algorithm page: chip 1 has no corner data).
EMANOM_CHIPS = range(2, 8)


def emanom(args: dict[str, str], ctx: TaskContext) -> int:
    """Judge chips 2-7; write the log and, with writekeys, keywords into the input list."""
    from astropy.io import fits

    path = ctx.require_file("eventfile", ctx.param("eventfile"))
    hdr = _event_header(path)
    if not str(hdr.get("INSTRUME", "")).startswith("EMOS"):
        raise SasExit("wrongInstrument", "emanom works on EPIC MOS event lists only")
    with fits.open(path) as hdul:
        ccds = sorted(int(h.name[6:]) for h in hdul if h.name.startswith("STDGTI") and h.name[6:].isdigit())
    digest = hashlib.sha256(f"{hdr.get('OBS_ID')}{hdr.get('INSTRUME')}{hdr.get('EXPIDSTR')}".encode()).digest()
    states = "GGGGGGGGGGIIBOU"
    judged: list[tuple[int, str, float, float]] = []
    for i, ccd in enumerate(c for c in ccds if c in EMANOM_CHIPS):
        judged.append((ccd, states[digest[i] % len(states)], 0.3 + (digest[i + 8] % 50) / 100,
                       (digest[i + 16] % 100) / 1000))
    if is_yes(ctx.param("writelog")):
        lines = [f"{ctx.creator(TASKS['emanom'].version)} anomalous state check",
                 f"Event file: {path}", f"keepcorner = {ctx.param('keepcorner')}"]
        lines += [f"CCD: {ccd}  Hardness ratio: {hr:.3f}  Corner rate: {rate:.4f}  Status: {state}"
                  for ccd, state, hr, rate in judged]
        with atomic_path(emanom_output(ctx)) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
    if is_yes(ctx.param("keepcorner")):
        corner = ctx.path(ctx.param("cornerfile") or "temp_corner.fits")
        with atomic_path(corner) as tmp:
            fits.PrimaryHDU().writeto(tmp)
    if is_yes(ctx.param("writekeys")):
        with fits.open(path) as hdul:
            hdus = [h.copy() for h in hdul]
        for ccd, state, hr, _rate in judged:
            hdus[0].header[f"ANOMHR{ccd}"] = (round(hr, 3), f"emanom hardness ratio of CCD {ccd}")
            hdus[0].header[f"ANOMHE{ccd}"] = (0.05, f"emanom hardness ratio error of CCD {ccd}")
            hdus[0].header[f"ANOMFL{ccd}"] = (state, f"emanom anomalous state of CCD {ccd}")
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp)
    return 0


# ---------------------------------------------------------------------------- espfilt

def espfilt_names(stem: str, elow: str, ehigh: str, longnames: bool) -> dict[str, str]:
    """Output names: ``pnS003-gti.fits`` or, with long names, ``pnS003-gti-2500-8500.fits``;
    the OOT list ``pnS003-allevcoot.fits`` in both cases (DAXA 0.3.7)."""
    sfx = f"-{elow}-{ehigh}" if longnames else ""
    return {"gti": f"{stem}-gti{sfx}.fits", "allevc": f"{stem}-allevc{sfx}.fits",
            "hist": f"{stem}-hist{sfx}.qdp", "allevcoot": f"{stem}-allevcoot.fits"}


def _old(ctx: TaskContext) -> bool:
    """SAS < 20: DAXA's ``eventset=`` form, fixed band, band-suffixed names."""
    return sas_major(ctx.sas_version()) < 20


def _input(ctx: TaskContext) -> str:
    return ctx.param("eventset") if _old(ctx) else ctx.param("eventfile")


def _band(ctx: TaskContext) -> tuple[str, str]:
    return ("2500", "8500") if _old(ctx) else (ctx.param("elow"), ctx.param("ehigh"))


def _names(ctx: TaskContext) -> dict[str, str]:
    hdr = _event_header(ctx.path(_input(ctx)))
    longnames = _old(ctx) or is_yes(ctx.param("withlongnames"))
    return espfilt_names(_stem(hdr), *_band(ctx), longnames)


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
    method = ctx.param("method")
    if method not in ("histogram", "ratio"):
        raise SasExit("InvalidParameter", f"method must be histogram or ratio, not '{method}'")
    path = ctx.require_file("eventset" if _old(ctx) else "eventfile", _input(ctx))
    withoot = not _old(ctx) and is_yes(ctx.param("withoot"))
    oot = ctx.require_file("ootfile", ctx.param("ootfile")) if withoot else None
    creator = ctx.creator(TASKS[task].version)
    tag = creator.split(" ", 1)[1]
    info(task, f"espfilt (espfilt-{TASKS[task].version})  {tag.split(' ')[-1]} started:  {_stamp()}")
    info(task, f" ESPFILT: Processing eventlist: {path}")
    try:
        elow, ehigh = (float(x) for x in _band(ctx))
        binsize = float(ctx.param("binsize")) if is_yes(ctx.param("withbinning")) else 60.0
        allowsigma = 3.0 if _old(ctx) else float(ctx.param("allowsigma"))
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
    if method == "histogram":  # the QDP plot: histogram method only (espfilt page)
        hist, hedges = np.histogram(rates, bins=min(50, max(5, counts.size // 4)))
        qdp = ["READ SERR 1", "LABEL X Rate (counts/s)", "LABEL Y Number of bins",
               f"! espfilt stand-in: median {med:.4f} sigma {sigma:.4f} threshold {thresh:.4f}"]
        qdp += [f"{(a + b) / 2:.5f} {(b - a) / 2:.5f} {n}" for a, b, n in zip(hedges[:-1], hedges[1:], hist, strict=True)]
        with atomic_path(ctx.cwd / names["hist"]) as tmp:
            tmp.write_text("\n".join(qdp) + "\n")
    info(task, f" {method.upper()}_METHOD: Return with no errors")
    info(task, f"espfilt (espfilt-{TASKS[task].version})  {tag.split(' ')[-1]} ended:    {_stamp()}")
    return 0
