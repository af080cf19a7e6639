"""Stand-in epchain, emchain and rgsproc: ODF summary in, calibrated event lists out.

Written from the sources in docs/SAS_FIDELITY.md, not from daxa_xmm/steps/:

- The ODF comes from ``odf=`` or ``SAS_ODF``, a folder or the summary file itself (OAL page:
  "It is also possible to assign directly the name of an ODF summary file to SAS_ODF or the
  task's -odf parameter").
- epchain (epchain pages: description node4, output files node13): atthkgen runs first
  when ``runatthkgen=Y`` and writes ``P{obsid}OBX000ATTTSR0000.FIT`` (atthk.dat, "used by
  attcalc"); with ``runatthkgen=N`` that file must already be in the working folder and none
  is written. epframes (``runepframes=Y``) makes ``rawevents##.dat`` and ``gti##.dat`` per CCD;
  with ``runepframes=N`` those must be there (the raw intermediates an earlier run kept
  with ``keepintermediate=raw``), else the run fails. Intermediates are deleted at the end
  unless ``keepintermediate`` keeps them. ``withoutoftime=Y`` writes the OOT list
  ``...OOEVLI0000.FIT`` *instead of* the normal ``...PIEVLI0000.FIT``.
- emchain (emchain pages node4, node14): one ``...MIEVLI0000.FIT`` per exposure and the
  tracking history file ``...OBX000ATTTSR0000.FIT`` made by atthkgen.
- rgsproc (algorithm page node30): stage 1 writes the attitude file if absent, the source
  list and the merged list ``P{obsid}R1S004merged0000.FIT`` (DAXA 0.3.7's name); stage 2
  (rgsangles) modifies the merged list in place; stage 3 (rgsfilter) creates
  ``...EVENLI0000.FIT`` from it. Stages 2 and 3 clone EVENLI into a missing merged list,
  as the page says, and fail when neither exists.
"""

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

from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path, is_yes, warning
from daxa_xmm.standin.odf import find_summary_sas
from daxa_xmm.standin.tasks import TASKS


def read_summary_exposures(path: Path) -> tuple[dict[str, str], dict[str, dict[str, object]]]:
    """The OBSERVATION values and ``{"PNS003": {start, end, modes: {ccd: mode}, mode}}``.

    A deliberately small reader of the summary the stand-in's odfingest writes (the real
    parser is daxa_xmm.odf.summary); enough for the chains to know which exposures exist.
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
    summary = find_summary_sas(odf, ctx.cwd)
    # The summary's PATH is where the constituents are read from: "changing the location of
    # the ODF files after this file is produced makes necessary to edit the file accordingly
    # or run the odfingest command again" (SAS Users Guide, odfingest).
    where = read_summary_exposures(summary)[0].get("path")
    if where and not Path(where).is_dir():
        raise SasExit("OdfNotFound", f"The ODF directory '{where}' named by PATH in {summary.name} does not exist")
    return summary


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
                  creator=ctx.creator(TASKS[ctx.task].version))


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


def _ccd_list(text: str) -> list[int]:
    """epchain's CCD syntax: ``1,6-9,12`` or ``7,3,11`` (blanks also separate)."""
    out: list[int] = []
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi or lo) + 1))
        except ValueError as exc:
            raise SasExit("InvalidParameter", f"ccds: '{text}' is not a CCD list like 1,6-9,12") from exc
    return sorted(set(out))


def epchain(args: dict[str, str], ctx: TaskContext) -> int:
    """One PN exposure's event list, or its out-of-time list, as the epchain pages describe."""
    from daxa_xmm.standin.events import make_event_list

    obs, exps = read_summary_exposures(_summary(ctx))
    expid = _pn_expid(ctx)
    exp = exps.get(f"PN{expid}")
    if exp is None:
        raise SasExit("ExposureNotFound", f"Exposure {expid} of EPIC-pn is not in the ODF {obs.get('obsid', '')}")
    modes: dict[int, str] = exp["modes"]  # type: ignore[assignment]
    want = _ccd_list(ctx.param("ccds"))
    missing = [c for c in want if c not in modes]
    if missing and "ccds" in args:
        warning("epchain", "noSuchCcd", f"CCDs {missing} have no data in exposure {expid}; ignored")
    imaging = [c for c in want if modes.get(c) == "Imaging"]
    if not imaging:
        raise SasExit("noImagingData", f"Exposure {expid} has no imaging-mode CCD data to process")
    att = ctx.cwd / f"P{obs['obsid']}OBX000ATTTSR0000.FIT"
    if is_yes(ctx.param("runatthkgen")):
        _attitude(ctx, obs)
    elif not att.is_file():
        raise SasExit("noAttitude", f"runatthkgen=N but the attitude file {att.name} (atthk.dat) is not in "
                                    "the working directory: run atthkgen first")
    raw = [ctx.cwd / f"{kind}{c:02d}.dat" for c in imaging for kind in ("rawevents", "gti")]
    if is_yes(ctx.param("runepframes")):
        for f in raw:
            with atomic_path(f) as tmp:
                tmp.write_text(f"epframes stand-in intermediate of {expid}\n")
    else:
        gone = [f.name for f in raw if not f.is_file()]
        if gone:
            raise SasExit("noRawEvents", f"runepframes=N but the raw intermediates {', '.join(gone[:4])}"
                                         f"{' ...' if len(gone) > 4 else ''} are not in the working directory")
    oot = is_yes(ctx.param("withoutoftime"))
    make_event_list(epchain_output(ctx), obsid=obs["obsid"], inst="EPN", exp_id=expid, ccds=imaging,
                    tstart=str(exp["start"]), tstop=str(exp["end"]), seed=_seed(obs["obsid"], "PN", expid),
                    n_events=3000 if oot else 20000, flare=not oot, oot=oot,
                    submode=str(exp.get("mode") or "PrimeFullWindow"), filt=str(exp.get("filter", "Thin1")),
                    creator=ctx.creator(TASKS["epchain"].version))
    if ctx.param("keepintermediate").lower() not in ("raw", "all"):
        for f in raw:
            f.unlink(missing_ok=True)
    return 0


# ---------------------------------------------------------------------------- emchain

def _mos_units(ctx: TaskContext) -> list[tuple[str, str]]:
    """(M1|M2, S001) pairs from ``instruments`` and ``exposures``."""
    insts = ctx.param("instruments").replace("both", "M1 M2").split()
    exps = [] if ctx.param("exposures") == "all" else ctx.param("exposures").split()
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
                            filt=str(exp.get("filter", "Thin1")), creator=ctx.creator(TASKS["emchain"].version))
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
    """The first file the call writes: stage 1's merged list, stage 3's EVENLI."""
    obs, exps = read_summary_exposures(_summary(ctx))
    unit = _rgs_units(ctx, exps)[0]
    kind = "merged" if _stage(ctx, "entrystage") == 1 else "EVENLI"
    return ctx.cwd / f"P{obs['obsid']}{unit}{kind}0000.FIT"


def rgsproc(args: dict[str, str], ctx: TaskContext) -> int:
    """Run stages ``entrystage`` to ``finalstage`` (1 to 3) for each exposure asked for."""
    import numpy as np
    from astropy.io import fits

    from daxa_xmm.standin.events import gti_hdu

    obs, exps = read_summary_exposures(_summary(ctx))
    first, last = _stage(ctx, "entrystage"), _stage(ctx, "finalstage")
    if last < first:
        raise SasExit("InvalidParameter", "finalstage is before entrystage")
    for unit in _rgs_units(ctx, exps):
        exp = exps[unit]
        stem = f"P{obs['obsid']}{unit}"
        merged, evenli = ctx.cwd / f"{stem}merged0000.FIT", ctx.cwd / f"{stem}EVENLI0000.FIT"
        srcli = ctx.cwd / f"{stem}SRCLI_0000.FIT"
        t0, t1 = _mission(str(exp["start"])), _mission(str(exp["end"]))
        if first == 1:
            if not (ctx.cwd / f"P{obs['obsid']}OBX000ATTTSR0000.FIT").exists():
                _attitude(ctx, obs)  # "IF (!exists(atttsr)) atthkgen: create(atttsr)"
            with atomic_path(srcli) as tmp:
                fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
                    [fits.Column("INDEX", "J", array=np.array([1], dtype=np.int32))], name="SRCLIST")]).writeto(tmp)
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
            prim = fits.PrimaryHDU()
            prim.header["CREATOR"] = ctx.creator(TASKS["rgsproc"].version)
            with atomic_path(merged) as tmp:  # evlistcomb: create(merged)
                fits.HDUList([prim, ev, gti_hdu([(t0, t1)], "STDGTI", obsid=obs["obsid"])]).writeto(tmp)
        elif not merged.exists():
            if not evenli.exists():
                raise SasExit("datasetCouldNotBeRead", f"neither {merged.name} nor {evenli.name} is in the "
                                                       f"working directory: run stage 1:events first")
            with atomic_path(merged) as tmp:  # "clone: read(evenli) create(merged)"
                tmp.write_bytes(evenli.read_bytes())
        if first <= 2 <= last:
            ctx.require_file("srcli_", srcli)
            with fits.open(merged) as hdul:
                hdus = [h.copy() for h in hdul]
            ev = hdus[1]
            if "BETA_CORR" not in ev.columns.names:
                n = len(ev.data)
                rng = np.random.default_rng(_seed(obs["obsid"], unit, "angles"))
                newcols = ev.columns + fits.ColDefs([
                    fits.Column("BETA_CORR", "D", unit="rad", array=rng.uniform(0.035, 0.04, n)),
                    fits.Column("XDSP_CORR", "D", unit="rad", array=rng.normal(0, 1e-4, n))])
                hdus[1] = fits.BinTableHDU.from_columns(newcols, header=ev.header, name="EVENTS")
            with atomic_path(merged) as tmp:  # rgsangles: modify(merged)
                fits.HDUList(hdus).writeto(tmp)
        if first <= 3 <= last:
            with fits.open(merged) as hdul:
                if "BETA_CORR" not in hdul[1].columns.names:
                    raise SasExit("noAngles", f"{merged.name} has no angles: run stage 2:angles first")
                hdus = [h.copy() for h in hdul]
            with atomic_path(evenli) as tmp:  # rgsfilter: create(evenli)
                fits.HDUList(hdus).writeto(tmp)
        if last >= 4:
            warning("rgsproc", "stageNotSimulated", "the stand-in stops after 3:filter")
    return 0
