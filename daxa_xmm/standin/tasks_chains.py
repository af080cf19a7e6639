"""Stand-in epchain, emchain and rgsproc: ODF summary in, calibrated event lists out."""

from __future__ import annotations

__all__ = [
    "read_summary_exposures",
    "epchain", "epchain_output",
    "emchain", "emchain_output",
    "rgsproc", "rgsproc_output",
]

import datetime as dt
import hashlib
from pathlib import Path

from daxa_xmm.standin.common import TASK_VERSIONS, SasExit, TaskContext, atomic_path, is_yes, warning
from daxa_xmm.standin.odf import find_summary_sas


def read_summary_exposures(path: Path) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """The OBSERVATION values and ``{"PNS003": {start, end, modes: {ccd: mode}, mode}}``.

    A deliberately small reader of the summary the stand-in's odfingest writes (the real
    parser is daxa_xmm.summary); enough for the chains to know which exposures exist.
    """
    lines = path.read_text(errors="replace").splitlines()
    obs: dict[str, str] = {}
    exps: dict[str, dict[str, object]] = {}
    inst = ""
    cur: dict[str, object] | None = None
    i = 0
    while i < len(lines):
        ln = lines[i].strip()
        if ln.startswith("PATH "):
            obs["path"] = ln[5:].strip()
        elif ln == "OBSERVATION":
            vals = [lines[i + k].split("/", 1)[0].strip() for k in range(1, 5)]
            obs.update(obsid=vals[0], rev=vals[1], start=vals[2], end=vals[3])
            i += 4
        elif ln == "INSTRUMENT":
            inst = lines[i + 1].strip()
            i += 1
        elif ln == "EXPOSURE":
            ident = lines[i + 1].split("[also", 1)[1].strip(" ]") if "[also" in lines[i + 1] else ""
            cur = {"inst": inst, "id": ident, "start": lines[i + 8].split("/", 1)[0].strip(),
                   "end": lines[i + 9].split("/", 1)[0].strip(), "modes": {}, "mode": ""}
            exps[f"{inst}{ident}"] = cur
            i += 9
        elif cur is not None and ln.startswith("DATA_MODE_"):
            key, _, rest = ln.partition("=")
            cur["modes"][int(key.strip()[len("DATA_MODE_"):])] = rest.split("/", 1)[0].strip()  # type: ignore[index]
        elif cur is not None and ln.startswith("MODE ="):
            cur["mode"] = ln.split("=", 1)[1].split("/", 1)[0].strip()
        elif cur is not None and ln.startswith("FILTER ="):
            cur["filter"] = ln.split("=", 1)[1].split("//", 1)[0].strip()
        i += 1
    return obs, exps


def _summary(ctx: TaskContext) -> Path:
    """The summary file from ``odf=`` or SAS_ODF; needs SAS_CCF like every chain."""
    ctx.require_ccf()
    odf = ctx.args.get("odf") or ctx.env.get("SAS_ODF", "")
    if not odf or odf == "$SAS_ODF":
        raise SasExit("SAS_ODFUndefined", "No ODF: set odf= or SAS_ODF")
    return find_summary_sas(odf, ctx.cwd)


def _seed(*parts: str) -> int:
    """A stable seed from strings."""
    return int.from_bytes(hashlib.sha256("\0".join(parts).encode()).digest()[:4], "big")


def _mission(iso: str) -> float:
    t = dt.datetime.fromisoformat(iso.split(".")[0])
    return (t - dt.datetime(1998, 1, 1)).total_seconds()


def _attitude(ctx: TaskContext, obs: dict[str, str]) -> None:
    """``P{obsid}OBX000ATTTSR0000.FIT`` as the chains' atthkgen step writes it."""
    from daxa_xmm.standin.events import make_attitude

    out = ctx.cwd / f"P{obs['obsid']}OBX000ATTTSR0000.FIT"
    make_attitude(out, obsid=obs["obsid"], tstart=_mission(obs["start"]), tstop=_mission(obs["end"]),
                  creator=ctx.creator(TASK_VERSIONS[ctx.task]))


# ---------------------------------------------------------------------------- epchain

def _pn_expid(ctx: TaskContext) -> str:
    sched = ctx.param("schedule").upper()
    if sched not in ("S", "U"):
        raise SasExit("InvalidParameter", f"schedule must be S or U, not '{sched}'")
    try:
        num = int(ctx.param("exposure"))
    except ValueError as exc:
        raise SasExit("InvalidParameter", f"exposure must be an integer, not '{ctx.param('exposure')}'") from exc
    return f"{sched}{num:03d}"


def epchain_output(ctx: TaskContext) -> Path:
    """``P{obsid}PN{S003}PIEVLI0000.FIT``, or ``OOEVLI`` with withoutoftime=Y."""
    obs, _ = read_summary_exposures(_summary(ctx))
    kind = "OOEVLI" if is_yes(ctx.param("withoutoftime")) else "PIEVLI"
    return ctx.cwd / f"P{obs['obsid']}PN{_pn_expid(ctx)}{kind}0000.FIT"


def epchain(args: dict[str, str], ctx: TaskContext) -> int:
    """One PN exposure's event list (or its out-of-time list) plus the attitude file."""
    from daxa_xmm.standin.events import make_event_list

    obs, exps = read_summary_exposures(_summary(ctx))
    expid = _pn_expid(ctx)
    exp = exps.get(f"PN{expid}")
    if exp is None:
        raise SasExit("ExposureNotFound", f"Exposure {expid} of EPIC-pn is not in the ODF {obs.get('obsid', '')}")
    modes: dict[int, str] = exp["modes"]  # type: ignore[assignment]
    imaging = sorted(c for c, m in modes.items() if m == "Imaging")
    if "ccds" in args:
        want = sorted(int(c) for c in args["ccds"].replace(",", " ").split())
        missing = [c for c in want if c not in modes]
        if missing:
            warning("epchain", "noSuchCcd", f"CCDs {missing} have no data in exposure {expid}; ignored")
        imaging = [c for c in want if modes.get(c) == "Imaging"]
    if not imaging:
        raise SasExit("noImagingData", f"Exposure {expid} has no imaging-mode CCD data to process")
    oot = is_yes(ctx.param("withoutoftime"))
    out = epchain_output(ctx)
    make_event_list(out, obsid=obs["obsid"], inst="EPN", exp_id=expid, ccds=imaging,
                    tstart=str(exp["start"]), tstop=str(exp["end"]), seed=_seed(obs["obsid"], "PN", expid),
                    n_events=3000 if oot else 20000, flare=not oot, oot=oot,
                    submode=str(exp.get("mode") or "PrimeFullWindow"), filt=str(exp.get("filter", "Thin1")),
                    creator=ctx.creator(TASK_VERSIONS["epchain"]))
    _attitude(ctx, obs)
    return 0


# ---------------------------------------------------------------------------- emchain

def _mos_units(ctx: TaskContext) -> list[tuple[str, str]]:
    """(M1|M2, S001) pairs from ``instruments`` and ``exposures``."""
    insts = ctx.param("instruments").split()
    exps = ctx.args.get("exposures", "").split()
    for i in insts:
        if i not in ("M1", "M2"):
            raise SasExit("InvalidParameter", f"instruments must be M1 and/or M2, not '{i}'")
    if not exps:
        return [(i, "") for i in insts]
    return [(i, e) for i in insts for e in exps]


def emchain_output(ctx: TaskContext) -> Path:
    """``P{obsid}M1S001MIEVLI0000.FIT`` of the first unit."""
    obs, _ = read_summary_exposures(_summary(ctx))
    inst, exp = _mos_units(ctx)[0]
    return ctx.cwd / f"P{obs['obsid']}{inst}{exp}MIEVLI0000.FIT"


def emchain(args: dict[str, str], ctx: TaskContext) -> int:
    """MOS event lists for each asked instrument/exposure present in the ODF."""
    from daxa_xmm.standin.events import make_event_list

    obs, exps = read_summary_exposures(_summary(ctx))
    made = 0
    for inst, expid in _mos_units(ctx):
        keys = [f"{inst}{expid}"] if expid else [k for k in exps if k.startswith(inst)]
        for key in keys:
            exp = exps.get(key)
            if exp is None:
                warning("emchain", "noExposure", f"Exposure {key[2:]} of {inst} is not in the ODF; skipped")
                continue
            modes: dict[int, str] = exp["modes"]  # type: ignore[assignment]
            ccds = sorted(c for c, m in modes.items() if m == "Imaging")
            if not ccds:
                warning("emchain", "noImagingData", f"{key} has no imaging CCD data; skipped")
                continue
            make_event_list(ctx.cwd / f"P{obs['obsid']}{key}MIEVLI0000.FIT", obsid=obs["obsid"],
                            inst="EMOS1" if inst == "M1" else "EMOS2", exp_id=key[2:], ccds=ccds,
                            tstart=str(exp["start"]), tstop=str(exp["end"]), seed=_seed(obs["obsid"], key),
                            n_events=15000, submode=str(exp.get("mode") or "PrimeFullWindow"),
                            filt=str(exp.get("filter", "Thin1")), creator=ctx.creator(TASK_VERSIONS["emchain"]))
            made += 1
    if not made:
        raise SasExit("noEventLists", "No MOS event list could be made from the requested exposures")
    _attitude(ctx, obs)
    return 0


# ---------------------------------------------------------------------------- rgsproc

_STAGES = ("1:events", "2:angles", "3:filter", "4:spectra", "5:fluxing")


def _stage(ctx: TaskContext, name: str) -> int:
    value = ctx.param(name)
    if value not in _STAGES:
        raise SasExit("InvalidParameter", f"{name} must be one of {', '.join(_STAGES)}, not '{value}'")
    return int(value[0])


def _rgs_units(ctx: TaskContext, exps: dict[str, dict[str, object]]) -> list[str]:
    if is_yes(ctx.param("withinstexpids")):
        ids = ctx.param("instexpids").split()
        if not ids:
            raise SasExit("InvalidParameter", "withinstexpids=true needs instexpids (e.g. R1S004)")
        for i in ids:
            if i not in exps or not i.startswith(("R1", "R2")):
                raise SasExit("ExposureNotFound", f"RGS exposure {i} is not in the ODF")
        return ids
    return [k for k in exps if k.startswith(("R1", "R2"))]


def rgsproc_output(ctx: TaskContext) -> Path:
    """``P{obsid}R1S004EVENLI0000.FIT`` of the first unit."""
    obs, exps = read_summary_exposures(_summary(ctx))
    return ctx.cwd / f"P{obs['obsid']}{_rgs_units(ctx, exps)[0]}EVENLI0000.FIT"


def rgsproc(args: dict[str, str], ctx: TaskContext) -> int:
    """Stage 1 writes EVENLI, 2 adds angles to it, 3 writes the filtered list and merged GTI.

    Later stages need the earlier stage's event list in the cwd, as real rgsproc does.
    """
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import gti_hdu

    obs, exps = read_summary_exposures(_summary(ctx))
    first, last = _stage(ctx, "entrystage"), _stage(ctx, "finalstage")
    if last < first:
        raise SasExit("InvalidParameter", "finalstage is before entrystage")
    for unit in _rgs_units(ctx, exps):
        exp = exps[unit]
        evenli = ctx.cwd / f"P{obs['obsid']}{unit}EVENLI0000.FIT"
        t0, t1 = _mission(str(exp["start"])), _mission(str(exp["end"]))
        if first == 1:
            rng = np.random.default_rng(_seed(obs["obsid"], unit))
            n = 5000
            cols = [
                fits.Column("TIME", "D", unit="s", array=np.sort(rng.uniform(t0, t1, n))),
                fits.Column("CCDNR", "B", array=rng.integers(1, 10, n).astype(np.uint8)),
                fits.Column("PI", "I", unit="eV", array=rng.integers(300, 2500, n).astype(np.int16)),
                fits.Column("FLAG", "J", array=np.zeros(n, dtype=np.int32)),
            ]
            ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
            ev.header["INSTRUME"] = "RGS1" if unit.startswith("R1") else "RGS2"
            ev.header["OBS_ID"] = obs["obsid"]
            ev.header["EXPIDSTR"] = unit[2:]
            ev.header["TSTART"], ev.header["TSTOP"] = t0, t1
            ev.header["RGSSTAGE"] = (1, "daxa_xmm stand-in: last rgsproc stage applied")
            prim = fits.PrimaryHDU()
            prim.header["CREATOR"] = ctx.creator(TASK_VERSIONS["rgsproc"])
            with atomic_path(evenli) as tmp:
                fits.HDUList([prim, ev, gti_hdu([(t0, t1)], "STDGTI", obsid=obs["obsid"])]).writeto(tmp)
        else:
            ctx.require_file("entrystage", evenli)
        if first <= 2 <= last:
            with fits.open(evenli) as hdul:
                hdus = [h.copy() for h in hdul]
            ev = hdus[1]
            n = len(ev.data)
            rng = np.random.default_rng(_seed(obs["obsid"], unit, "angles"))
            newcols = ev.columns + fits.ColDefs([
                fits.Column("BETA_CORR", "D", unit="rad", array=rng.uniform(0.035, 0.04, n)),
                fits.Column("XDSP_CORR", "D", unit="rad", array=rng.normal(0, 1e-4, n))])
            new = fits.BinTableHDU.from_columns(newcols, header=ev.header, name="EVENTS")
            new.header["RGSSTAGE"] = 2
            with atomic_path(evenli) as tmp:
                fits.HDUList([hdus[0], new, *hdus[2:]]).writeto(tmp)
        if first <= 3 <= last:
            with fits.open(evenli) as hdul:
                if "BETA_CORR" not in hdul[1].columns.names:
                    raise SasExit("noAngles", f"{evenli.name} has no angles: run stage 2:angles first")
                hdus = [h.copy() for h in hdul]
            hdus[1].header["RGSSTAGE"] = 3
            merged = ctx.cwd / f"P{obs['obsid']}{unit}MERGED0000.FIT"
            with atomic_path(merged) as tmp:
                fits.HDUList([fits.PrimaryHDU(header=hdus[0].header), hdus[1]]).writeto(tmp)
            flt = ctx.cwd / f"P{obs['obsid']}{unit}FLTGTI0000.FIT"
            with atomic_path(flt) as tmp:
                fits.HDUList([fits.PrimaryHDU(), gti_hdu([(t0, t1)], "STDGTI", obsid=obs["obsid"])]).writeto(tmp)
            with atomic_path(evenli) as tmp:
                fits.HDUList(hdus).writeto(tmp)
        if last >= 4:
            warning("rgsproc", "stageNotSimulated", "the stand-in stops after 3:filter")
    return 0
