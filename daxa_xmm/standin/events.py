"""Synthetic but realistic EPIC event lists and attitude files, in SAS's real FITS layout.

Columns, dtypes, units, legal limits, WCS keywords and the ``XMMEA_*`` flag macros mirror
a real emchain/evselect MOS list (``xmm-samples/events``): EVENTS with TIME RAWX RAWY DETX
DETY X Y PHA PI FLAG PATTERN CCDNR, one ``STDGTInn`` per CCD, ``EXPOSUnn`` frames. The
content is built so the downstream filters matter: a background flare for espfilt to cut,
events with FLAG != 0 and patterns above the PN (4) and MOS (12) limits.
"""

from __future__ import annotations

__all__ = ["make_event_list", "make_attitude", "gti_hdu", "SKY_CENTRE", "FOV_RADIUS", "XMMEA_KEYWORDS"]

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Sky pixel of the pointing (X/Y reference pixel of a real list) and FOV radius in sky pixels
#: (0.05 arcsec pixels; 15 arcmin).
SKY_CENTRE = 25921
FOV_RADIUS = 18000
_PIX_DEG = 1.38888888888889e-05
RA_PNT, DEC_PNT = 149.59475, -11.0876388888889
MJDREF = 50814.0

#: (keyword, value, comment) of the flag macros, verbatim from a real MOS list; PN gets
#: XMMEA_EP. evselect's ``#XMMEA_EM`` expands to the keyword's value.
XMMEA_KEYWORDS: list[tuple[str, str, str]] = [
    ("XMMEA_0", "(FLAG & 0x1) != 0", "DIAGONAL"),
    ("XMMEA_1", "(FLAG & 0x2) != 0", "CLOSE_TO_CCD_BORDER"),
    ("XMMEA_5", "(FLAG & 0x20) != 0", "CLOSE_TO_ONBOARD_BADPIX"),
    ("XMMEA_6", "(FLAG & 0x40) != 0", "CLOSE_TO_BRIGHTPIX"),
    ("XMMEA_8", "(FLAG & 0x100) != 0", "CLOSE_TO_DEADPIX"),
    ("XMMEA_9", "(FLAG & 0x200) != 0", "CLOSE_TO_BADCOL"),
    ("XMMEA_10", "(FLAG & 0x400) != 0", "CLOSE_TO_BADROW"),
    ("XMMEA_11", "(FLAG & 0x800) != 0", "IN_SPOILED_FRAME"),
    ("XMMEA_13", "(FLAG & 0x2000) != 0", "ON_BADOFFSET"),
    ("XMMEA_15", "(FLAG & 0x8000) != 0", "FLICKERING"),
    ("XMMEA_16", "(FLAG & 0x10000) != 0", "OUT_OF_FOV"),
    ("XMMEA_17", "(FLAG & 0x20000) != 0", "IN_BAD_FRAME"),
    ("XMMEA_19", "(FLAG & 0x80000) != 0", "COSMIC_RAY"),
    ("XMMEA_21", "(FLAG & 0x200000) != 0", "ON_BADPIX"),
    ("XMMEA_22", "(FLAG & 0x400000) != 0", "REJECTED_BY_GATTI"),
    ("XMMEA_25", "(FLAG & 0x2000000) != 0", "OUT_OF_CCD_WINDOW"),
    ("XMMEA_26", "(FLAG & 0x4000000) != 0", "OUTSIDE_THRESHOLDS"),
    ("XMMEA_28", "(FLAG & 0x10000000) != 0", "ON_BADROW"),
    ("XMMEA_29", "(FLAG & 0x20000000) != 0", "BAD_E3E4"),
    ("XMMEA_30", "(FLAG & 0x40000000) != 0", "UNDERSHOOT"),
]
_MACROS = {
    "EMOS1": [("XMMEA_EM", "(FLAG & 0x766ba000) == 0", "Select good MOS events"),
              ("XMMEA_SM", "(FLAG & 0xfffffeff) == 0", "Select good MOS events for spectra")],
    "EPN": [("XMMEA_EP", "(FLAG & 0x2fb002c) == 0", "Select good PN events"),
            ("XMMEA_SP", "(FLAG & 0x3fffdff) == 0", "Select good PN events for spectra")],
}
_MACROS["EMOS2"] = _MACROS["EMOS1"]
#: FLAG values given to a fraction of events: some caught by #XMMEA_*, some only by FLAG==0.
_BAD_FLAGS = np.array([0x1, 0x2, 0x10000, 0x20000, 0x80000, 0x400000, 0x8000], dtype=np.int32)


def _mission_time(iso: str) -> float:
    """Seconds since 1998-01-01T00:00:00 (XMM mission time, ignoring leap seconds)."""
    t = dt.datetime.fromisoformat(iso.replace("Z", ""))
    return (t - dt.datetime(1998, 1, 1)).total_seconds()


def _iso(seconds: float) -> str:
    """Inverse of :func:`_mission_time`."""
    return (dt.datetime(1998, 1, 1) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def _ccd_of(x: np.ndarray, y: np.ndarray, ccds: Sequence[int]) -> np.ndarray:
    """Assign each position a CCD: equal angular sectors (one CCD per sector)."""
    ang = (np.arctan2(y - SKY_CENTRE, x - SKY_CENTRE) + np.pi) / (2 * np.pi)
    idx = np.minimum((ang * len(ccds)).astype(int), len(ccds) - 1)
    return np.asarray(ccds, dtype=np.uint8)[idx]


def make_event_list(
    path: Path,
    *,
    obsid: str,
    inst: str,
    exp_id: str,
    ccds: Sequence[int],
    tstart: float | str,
    tstop: float | str,
    seed: int,
    n_events: int = 20000,
    flare: bool = True,
    oot: bool = False,
    submode: str = "PrimeFullWindow",
    filt: str = "Thin1",
    creator: str = "daxa_xmm.standin",
) -> Path:
    """Write an event list; returns ``path``.

    Args:
        path: the output file (written atomically).
        obsid: 10-digit ObsID.
        inst: ``EPN``, ``EMOS1`` or ``EMOS2``.
        exp_id: ``S003``-style exposure id.
        ccds: CCD numbers that hold events (one STDGTInn each).
        tstart, tstop: mission seconds, or ISO dates.
        seed: RNG seed (same seed, same file).
        n_events: number of rows.
        flare: put a background flare (hard, about 8x the quiescent rate) in the middle
            15% of the exposure.
        oot: an out-of-time list (events smeared along RAWY, no flare).
        submode, filt: SUBMODE and FILTER keywords.
        creator: the CREATOR keyword.
    """
    from astropy.io import fits

    t0 = _mission_time(tstart) if isinstance(tstart, str) else float(tstart)
    t1 = _mission_time(tstop) if isinstance(tstop, str) else float(tstop)
    rng = np.random.default_rng(seed)
    ccds = sorted(int(c) for c in ccds) or [1]
    n = int(n_events)
    n_flare = int(0.35 * n) if flare and not oot else 0
    n_q = n - n_flare
    times = rng.uniform(t0, t1, n_q)
    pi = np.clip((300 * (1 + rng.pareto(1.2, n_q))).astype(int), 100, 14999)
    if n_flare:
        f0, f1 = t0 + 0.45 * (t1 - t0), t0 + 0.60 * (t1 - t0)
        times = np.concatenate([times, rng.uniform(f0, f1, n_flare)])
        pi = np.concatenate([pi, rng.uniform(2000, 12000, n_flare).astype(int)])
    r = FOV_RADIUS * np.sqrt(rng.uniform(0, 1, n))
    th = rng.uniform(0, 2 * np.pi, n)
    x = (SKY_CENTRE + r * np.cos(th)).astype(np.int32)
    y = (SKY_CENTRE + r * np.sin(th)).astype(np.int32)
    order = np.argsort(times, kind="stable")
    times, pi, x, y = times[order], pi[order], x[order], y[order]
    is_pn = inst == "EPN"
    pat_max, pat_lim = (12, 4) if is_pn else (31, 12)
    pattern = rng.integers(0, pat_lim + 1, n)
    high = rng.uniform(0, 1, n) < 0.12
    pattern[high] = rng.integers(pat_lim + 1, pat_max + 1, high.sum())
    flag = np.zeros(n, dtype=np.int32)
    bad = rng.uniform(0, 1, n) < 0.10
    flag[bad] = rng.choice(_BAD_FLAGS, bad.sum())
    ccdnr = _ccd_of(x, y, ccds)
    rawy = rng.integers(1, 201 if is_pn else 601, n) if not oot else rng.integers(1, 201 if is_pn else 601, n)
    cols = [
        fits.Column("TIME", "D", unit="s", array=times),
        fits.Column("RAWX", "I", unit="PIXELS", array=rng.integers(1, 65 if is_pn else 601, n).astype(np.int16)),
        fits.Column("RAWY", "I", unit="PIXELS", array=rawy.astype(np.int16)),
        fits.Column("DETX", "I", unit="pixel", array=((x - SKY_CENTRE) // 1).astype(np.int16)),
        fits.Column("DETY", "I", unit="pixel", array=((y - SKY_CENTRE) // 1).astype(np.int16)),
        fits.Column("X", "J", unit="pixel", array=x),
        fits.Column("Y", "J", unit="pixel", array=y),
        fits.Column("PHA", "I", unit="CHAN", array=(pi // 4).astype(np.int16)),
        fits.Column("PI", "I", unit="CHAN", array=pi.astype(np.int16)),
        fits.Column("FLAG", "J", array=flag),
        fits.Column("PATTERN", "B", array=pattern.astype(np.uint8)),
        fits.Column("CCDNR", "B", array=ccdnr),
    ]
    date_obs, date_end = _iso(t0), _iso(t1)
    common = [
        ("TELESCOP", "XMM", "XMM mission"),
        ("INSTRUME", inst, "EPIC PN Instrument" if is_pn else "EPIC MOS Instrument"),
        ("DATAMODE", "IMAGING", "Instrument mode (IMAGING or TIMING)"),
        ("OBS_ID", obsid, "Observation Identifier"),
        ("EXP_ID", f"{obsid}{exp_id[1:]}", "Exposure Identifier"),
        ("EXPIDSTR", exp_id, "Exposure ID"),
        ("DATE-OBS", date_obs, "Start time of exposure"),
        ("DATE-END", date_end, "End time of exposure"),
        ("FILTER", filt, "Filter ID"),
        ("SUBMODE", submode, "Guest Observer mode"),
    ]
    primary = fits.PrimaryHDU()
    for k, v, c in common:
        primary.header[k] = (v, c)
    primary.header["CREATOR"] = creator
    primary.header["OBS_MODE"] = ("POINTING", "Observation mode (pointing or slew)")
    primary.header["RA_PNT"] = (RA_PNT, "[deg] Mean pointing RA")
    primary.header["DEC_PNT"] = (DEC_PNT, "[deg] Mean pointing Dec")
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    h = ev.header
    for k, v, c in common:
        h[k] = (v, c)
    h["TSTART"] = (t0, "[s] Start time of first frame")
    h["TSTOP"] = (t1, "[s] End time of last frame")
    h["TIMEUNIT"] = ("s", "All times in s unless specified otherwise")
    h["TIMESYS"] = ("TT", "XMM time will be TT (Terrestrial Time)")
    h["MJDREF"] = (MJDREF, "[d] 1998-01-01T00:00:00 (TT) expressed in MJD")
    h["TIMEREF"] = ("LOCAL", "Reference location of photon arrival times")
    h["TASSIGN"] = ("SATELLITE", "Location of time assignment")
    h["TIMEZERO"] = (0.0, "[s] Clock correction (if not zero)")
    h["CLOCKAPP"] = (True, "Clock correction applied")
    for k, v, c in XMMEA_KEYWORDS + _MACROS[inst]:
        h[k] = (v, c)
    h["TELAPSE"] = (t1 - t0, "[s] Full time interval for the exposure")
    h["RA_PNT"] = (RA_PNT, "[deg] Mean pointing RA")
    h["DEC_PNT"] = (DEC_PNT, "[deg] Mean pointing Dec")
    h["PA_PNT"] = (299.6, "[deg] Mean position angle")
    for axis, val, delt in (("X", RA_PNT, -_PIX_DEG), ("Y", DEC_PNT, _PIX_DEG)):
        h[f"REF{axis}CTYP"] = ("RA---TAN" if axis == "X" else "DEC--TAN", "WCS Coord. type")
        h[f"REF{axis}CRPX"] = (SKY_CENTRE, "WCS axis reference pixel of projected image")
        h[f"REF{axis}CRVL"] = (val, f"[deg] WCS coord. at {axis} axis ref. pixel")
        h[f"REF{axis}CDLT"] = (delt, f"[deg/pix] WCS {axis} increment at ref. pixel")
        h[f"REF{axis}LMIN"] = (1, "WCS minimum legal axis value")
        h[f"REF{axis}LMAX"] = (51840, "WCS maximum legal axis value")
        h[f"REF{axis}CUNI"] = ("deg", "WCS Physical units of axis")
    limits = {2: (-4, 605), 3: (1, 602), 4: (-19798, 19884), 5: (-20285, 19832),
              8: (0, 32767), 9: (0, 15000), 11: (0, 31), 12: (1, 17)}
    for i, (lo, hi) in limits.items():
        h[f"TLMIN{i}"] = lo
        h[f"TLMAX{i}"] = hi
    for i, name in ((4, "DETX"), (5, "DETY")):
        h[f"TCRPX{i}"] = (0, f"Center for {name}")
        h[f"TCTYP{i}"] = f"{name}_ANG"
        h[f"TCRVL{i}"] = 0.0
        h[f"TCDLT{i}"] = (_PIX_DEG, f"[degrees] Pixel size for {name}")
        h[f"TCUNI{i}"] = ("deg", f"Physical unit for {name}")
    for i, (ctype, val, delt) in ((6, ("RA---TAN", RA_PNT, -_PIX_DEG)), (7, ("DEC--TAN", DEC_PNT, _PIX_DEG))):
        h[f"TNULL{i}"] = (-99999999, "Null value of the column")
        h[f"TLMIN{i}"] = 1.0
        h[f"TLMAX{i}"] = 51840.0
        h[f"TCRPX{i}"] = SKY_CENTRE
        h[f"TCTYP{i}"] = ctype
        h[f"TCRVL{i}"] = val
        h[f"TCDLT{i}"] = delt
        h[f"TCUNI{i}"] = "deg"
    ontime = t1 - t0
    for ccd in ccds:
        h[f"ONTIME{ccd:02d}"] = (ontime, "Sum of GTIs for a particular CCD")
        h[f"LIVETI{ccd:02d}"] = (ontime * 0.99, "Live time for a particular CCD")
    h["ONTIME"] = (ontime, "Sum of GTIs for central CCD")
    h["LIVETIME"] = (ontime * 0.99, "Live time for the central CCD")
    h["EXPOSURE"] = (ontime * 0.99, "[s] Exposure time of the central CCD")
    hdus: list = [primary, ev]
    frame = np.arange(t0, t1, max((t1 - t0) / 200.0, 1.0))
    for ccd in ccds:
        ex = fits.BinTableHDU.from_columns(
            [fits.Column("TIME", "D", unit="s", array=frame),
             fits.Column("FRACEXP", "E", array=np.ones(frame.size, dtype=np.float32))],
            name=f"EXPOSU{ccd:02d}",
        )
        ex.header["CCDID"] = (ccd, "Numerical identifier of the CCD")
        hdus.append(ex)
    for ccd in ccds:
        hdus.append(gti_hdu([(t0, t1)], f"STDGTI{ccd:02d}", inst=inst, obsid=obsid, ccd=ccd, exp_id=exp_id))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    return path


def gti_hdu(intervals: Sequence[tuple[float, float]], name: str, *, inst: str = "", obsid: str = "",
            ccd: int | None = None, exp_id: str = ""):
    """A GTI extension (START/STOP in SECONDS) as SAS writes it."""
    from astropy.io import fits

    arr = np.asarray(intervals, dtype=float).reshape(-1, 2)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", unit="SECONDS", array=arr[:, 0]),
         fits.Column("STOP", "D", unit="SECONDS", array=arr[:, 1])],
        name=name,
    )
    h = hdu.header
    h["TELESCOP"] = ("XMM", "XMM mission")
    if inst:
        h["INSTRUME"] = inst
    if obsid:
        h["OBS_ID"] = (obsid, "Observation Identifier")
    if exp_id:
        h["EXPIDSTR"] = (exp_id, "Exposure ID")
    if ccd is not None:
        h["CCDID"] = (ccd, "Numerical identifier of the CCD")
    h["NUMGTI"] = (len(arr), "Number of good time intervals")
    h["ONTIME"] = (float((arr[:, 1] - arr[:, 0]).sum()), "[s] Total good time")
    h["HDUCLASS"] = ("OGIP", "File conforms to OGIP/GSFC conventions")
    h["HDUCLAS1"] = ("GTI", "File contains Good Time Intervals")
    h["HDUCLAS2"] = ("STANDARD", "File contains Good Time Intervals")
    return hdu


def make_attitude(path: Path, *, obsid: str, tstart: float, tstop: float, creator: str = "daxa_xmm.standin") -> Path:
    """An attitude time series (ATTHK-like table: TIME AHFRA AHFDEC AHFPA) as atthkgen writes it."""
    from astropy.io import fits

    t = np.arange(tstart, tstop + 1, max((tstop - tstart) / 100.0, 1.0))
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("TIME", "D", unit="s", array=t),
         fits.Column("AHFRA", "E", unit="deg", array=np.full(t.size, RA_PNT, dtype=np.float32)),
         fits.Column("AHFDEC", "E", unit="deg", array=np.full(t.size, DEC_PNT, dtype=np.float32)),
         fits.Column("AHFPA", "E", unit="deg", array=np.full(t.size, 299.6, dtype=np.float32))],
        name="ATTHK",
    )
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "XMM"
    primary.header["OBS_ID"] = obsid
    primary.header["CREATOR"] = creator
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fits.HDUList([primary, hdu]).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    return path
