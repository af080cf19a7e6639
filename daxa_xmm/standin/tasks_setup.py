"""Stand-in cifbuild and odfingest: the per-observation set-up tasks."""

from __future__ import annotations

__all__ = ["cifbuild", "cifbuild_output", "odfingest", "odfingest_output"]

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from daxa_xmm.odf.fitsread import primary_header
from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path, build_tag, is_yes
from daxa_xmm.standin.fitswrite import Column, bintable_hdu, card, primary_hdu
from daxa_xmm.standin.odf import INSTRUMENT_ORDER, read_odf
from daxa_xmm.standin.tasks import TASKS

# ---------------------------------------------------------------------------- cifbuild

def cifbuild_output(ctx: TaskContext) -> Path:
    """The calindexset path."""
    return ctx.path(ctx.param("calindexset"))


#: SAS's date-time format (CALINDEX dates, DATE keywords).
_ISO = "%Y-%m-%dT%H:%M:%S"

_CCF_NAME = re.compile(r"^(?P<scope>[A-Z0-9]+)_(?P<type>[A-Z0-9]+)_(?P<issue>\d{4})\.CCF$", re.IGNORECASE)


def _date_arg(value: str, what: str) -> dt.datetime:
    """``now`` or ``YYYY-MM-DD[Thh:mm:ss[.sss]]``; else SAS's InvalidDate error."""
    if value == "now":
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    for fmt in (f"{_ISO}.%f", _ISO, "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise SasExit("InvalidDate", f"{what} '{value}' is not a valid date (YYYY-MM-DD[Thh:mm:ss])")


@dataclass(frozen=True)
class _Chosen:
    """The issue of one scope-type cifbuild selected, and what its CALINDEX row says."""

    issue: int
    path: Path
    valdate: str  # the file's VALDATE (blank when its header has none)
    valdate_end: str  # when a higher issue takes over (its VALDATE, the earliest after ours), else blank
    subdate: str  # the file's SUBDATE (blank when its header has none)


def _ccf_header(path: Path) -> dict[str, dt.datetime | None]:
    """VALDATE, EVALDATE and SUBDATE of a CCF file (a key is absent when the header lacks it,
    None when the header cannot be read or the value is not a date)."""
    try:
        header = primary_header(path)
    except (OSError, ValueError):
        return {}
    out: dict[str, dt.datetime | None] = {}
    for key in ("VALDATE", "EVALDATE", "SUBDATE"):
        if key in header:
            try:
                out[key] = _date_arg(str(header[key]).strip(), key)
            except SasExit:
                out[key] = None
    return out


def _select_ccf(issues: dict[int, Path], obsdate: dt.datetime, analdate: dt.datetime) -> _Chosen | None:
    """cifbuild's choice among the issues of one scope-type: VALDATE <= observation date,
    SUBDATE <= analysis date (when the file has one), EVALDATE >= observation date (when
    present), highest issue. A file whose header lacks VALDATE (or cannot be read) is
    included, as if valid."""
    headers = {issue: _ccf_header(path) for issue, path in issues.items()}
    for issue in sorted(issues, reverse=True):
        h = headers[issue]
        valdate = h.get("VALDATE")
        if valdate is not None:
            evaldate, subdate = h.get("EVALDATE"), h.get("SUBDATE")
            if valdate > obsdate:
                continue
            if evaldate is not None and evaldate < obsdate:
                continue
            if subdate is not None and subdate > analdate:
                continue
        own = h.get("VALDATE")
        later = sorted(v for i, hh in headers.items()
                       if i > issue and (v := hh.get("VALDATE")) is not None and (own is None or v > own))
        return _Chosen(
            issue, issues[issue],
            valdate=valdate.strftime(_ISO) if valdate else "",
            valdate_end=later[0].strftime(_ISO) if later else "",
            subdate=sub.strftime(_ISO) if (sub := h.get("SUBDATE")) else "",
        )
    return None


def cifbuild(args: dict[str, str], ctx: TaskContext) -> int:
    """Write a CALINDEX FITS table listing, for each CCF type found, the issue cifbuild selects
    for the observation and analysis dates (see :func:`_select_ccf`)."""
    if is_yes(ctx.param("withccfpath")):
        ccfpath = ctx.param("ccfpath")
    else:
        ccfpath = ctx.env.get("SAS_CCFPATH", "")
        if not ccfpath:
            raise SasExit("SAS_CCFPATHUndefined", "The environment variable SAS_CCFPATH is not set")
    if is_yes(ctx.param("withobservationdate")):
        obsdate = _date_arg(ctx.param("observationdate"), "observationdate")
    else:
        odf = ctx.env.get("SAS_ODF", "")
        if not odf:
            raise SasExit("SAS_ODFUndefined", "withobservationdate=no needs SAS_ODF (the ODF folder or its summary file)")
        odfdir = Path(odf)
        odfdir = odfdir if odfdir.is_dir() else odfdir.parent
        start = read_odf(odfdir).observation().get("start", "")
        obsdate = _date_arg(start, "observation start")
    analdate = _date_arg(ctx.param("analysisdate"), "analysisdate")
    found: dict[tuple[str, str], dict[int, Path]] = {}
    for folder in ccfpath.split(":"):
        d = Path(folder)
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            m = _CCF_NAME.match(p.name)
            if m:
                found.setdefault((m["scope"].upper(), m["type"].upper()), {}).setdefault(int(m["issue"]), p)
    if not found:
        raise SasExit("NoCCFFound", f"No CCF constituents found in '{ccfpath}'")
    chosen = {key: pick for key, issues in found.items()
              if (pick := _select_ccf(issues, obsdate, analdate)) is not None}
    rows = sorted(chosen.items())
    full = is_yes(ctx.param("fullpath"))
    fname = [str(c.path.resolve()) if full else c.path.name for _, c in rows]
    date_unit = "yyyy:dd:mmZhh:mm:ss"
    cols = [
        Column("TELESCOP", "4A", ["XMM"] * len(rows)),
        Column("SCOPE", "6A", [k[0] for k, _ in rows]),
        Column("TYPEID", "32A", [k[1] for k, _ in rows]),
        Column("ISSUE", "I", [c.issue for _, c in rows]),
        Column("VALDATE", "19A", [c.valdate for _, c in rows], date_unit),
        Column("VALDATE-END", "19A", [c.valdate_end for _, c in rows], date_unit),
        Column("FNAME", "256A", fname),
        Column("DATE", "19A", ["2020-01-01T00:00:00"] * len(rows), date_unit),
        Column("FSIZE", "J", [c.path.stat().st_size for _, c in rows], "byte"),
        Column("SUBDATE", "19A", [c.subdate for _, c in rows], date_unit),
        Column("EXTSEQU", "32A", ["ANY"] * len(rows)),
        Column("EXTSEQID", "256A", [""] * len(rows)),
        Column("MD5", "32A", ["0" * 32] * len(rows)),
        Column("CREATOR", "64A", ["daxa_xmm.standin"] * len(rows)),
    ]
    table = bintable_hdu("CALINDEX", cols, [*card("CATEGORY", "XMMCCF"), *card("OBSVDATE", obsdate.strftime(_ISO)),
                                            *card("ANALDATE", analdate.strftime(_ISO))])
    creator = ctx.creator(TASKS["cifbuild"].version)
    primary = primary_hdu([
        *card("XPROC0", " ".join(["cifbuild", *ctx.argv]) + f" # {creator.split(' ', 1)[1]}"),
        *card("CREATOR", creator),
        *card("DATE", dt.datetime.now(dt.timezone.utc).strftime(f"{_ISO}.000"), "creation date"),
    ])
    out = cifbuild_output(ctx)
    with atomic_path(out) as tmp:
        tmp.write_bytes(primary + table)
    return 0


# --------------------------------------------------------------------------- odfingest

def _odfdir(ctx: TaskContext) -> Path:
    """The ODF folder: ``odfdir`` with ``withodfdir=yes``, else SAS_ODF (odfingest's page:
    "Look for the ODF files in odfdir? Otherwise use SAS_ODF"); a summary file names its folder."""
    value = ctx.param("odfdir") if is_yes(ctx.param("withodfdir")) else ctx.env.get("SAS_ODF", "")
    if not value:
        raise SasExit("SAS_ODFUndefined", "withodfdir=no and SAS_ODF is not set: no ODF to ingest")
    p = ctx.path(value)
    return p if p.is_dir() or not p.exists() else p.parent


def _outdir(ctx: TaskContext, odfdir: Path) -> Path:
    """The output folder, ``outdir`` (default ``.``, the working directory)."""
    return ctx.path(ctx.param("outdir"))


def odfingest_output(ctx: TaskContext) -> Path:
    """``{rev}_{obsid}_SCX00000SUM.SAS`` in outdir."""
    odfdir = _odfdir(ctx)
    asc = sorted(odfdir.glob("*_SCX00000SUM.ASC"))
    if not is_yes(ctx.param("usecanonicalname")):
        return _outdir(ctx, odfdir) / ctx.param("summaryfile")
    # "The name of the canonical SOSF differs from the one given in the ODF ICD only by the
    # suffix: .SAS instead of .ASC" (odfingest's description page)
    stem = asc[0].name[: -len("SUM.ASC")] if asc else "summary_"
    return _outdir(ctx, odfdir) / f"{stem}SUM.SAS"


_CONFIG_TITLE = {"M1": "EPIC MOS", "M2": "EPIC MOS", "PN": "EPIC PN", "R1": "RGS", "R2": "RGS", "OM": "OM"}


def _iso(value: object) -> str:
    """A DATE-OBS header value as ``YYYY-MM-DDThh:mm:ss.000``."""
    text = str(value or "").strip()
    return text if "." in text or not text else f"{text}.000"


def odfingest(args: dict[str, str], ctx: TaskContext) -> int:
    """Write the ODF summary file in odfingest's real layout.

    Gzipped constituents are refused: odfingest's pages say nothing of them (only
    emchain's page says the ODF's event files may be gzipped), so the stand-in takes the
    strict reading and the pipeline must hand it plain files, as DAXA 0.3.7 does.
    """
    if is_yes(ctx.param("findinstrumentmodes")):  # "[Requires SAS_CCF]" (odfingest.par)
        ctx.require_ccf()
    odfdir = _odfdir(ctx)
    gz = sorted(p.name for p in odfdir.glob("*.gz")) if odfdir.is_dir() else []
    if gz:
        raise SasExit("gzippedConstituent", f"{len(gz)} ODF constituents in {odfdir} are gzipped "
                                            f"({gz[0]}...): gunzip them first")
    odf = read_odf(odfdir)
    outdir = _outdir(ctx, odfdir)
    if not outdir.is_dir():
        raise SasExit("OutDirNotFound", f"The output directory '{outdir}' does not exist")
    out = odfingest_output(ctx)
    now = dt.datetime.now(dt.timezone.utc).strftime(f"{_ISO}.000")
    tag = build_tag(ctx.sas_version())
    lines = [
        "// ----------------------------------",
        "// XMM-Newton Science Analysis System",
        "// ----------------------------------",
        "//",
        "// ODF Summary File",
        f"// By: odfingest(odfingest-{TASKS['odfingest'].version}) [{tag}] on {now}",
        "//",
        "//",
        "// Directory where the ODF constituents were found. This may have to be edited to match the local file system structure.",
        "//",
        f"PATH {odfdir.resolve()}",
        "//",
        "// Observation Record",
        "//",
    ]
    obs = odf.record("OBSERVATION")
    if obs is None:
        raise SasExit("NoObservationRecord", "The ODF summary (SUM.ASC) has no OBSERVATION record")
    lines += [ln.rstrip() for ln in obs]
    files = sorted({*odf.files, out.name})
    lines += ["//", "// Number of files in the Observation Summary File, and their names", "//", "FILES",
              f"{len(files)} / Number of Files"]
    lines += [f"{name} / ODF Constituent" for name in files]
    conf = odf.record("CONFIGURATION")
    if conf is not None:
        asc_name = next(n for n in odf.files if n.endswith("SUM.ASC"))
        lines.append(f"// The CONFIGURATION record was extracted from {asc_name}")
        # odfingest's count covers the copied parameters plus its own three metadata lines
        params = [ln for ln in conf[2:] if ln.strip()]
        lines += [conf[0], str(len(params) + 3), *params]
    lines += [
        "// odfingest metadata",
        f"ODFINGEST_VERSION = {TASKS['odfingest'].version} / odfingest version",
        f"SAS_MANIFEST = {tag} / SAS Manifest",
        f"PROCESS_DATE = {now} / Time and Date when summary file produced",
    ]
    obs_index = 0
    for inst in INSTRUMENT_ORDER:
        exps = [e for e in odf.exposures if e.inst == inst]
        lines += ["//", "// Instrument Record", "//", "INSTRUMENT", inst,
                  f"{'Y' if exps else 'N'} / Is this instrument active?",
                  f"{len(exps)} / Number of exposures for this instrument"]
        for i, exp in enumerate(exps, start=1):
            obs_index += 1
            h = exp.header
            expid = str(h.get("EXP_ID", f"{odf.obsid}{inst}{exp.expid}")).strip()
            start, end = _iso(h.get("DATE-OBS")), _iso(h.get("DATE-END"))
            sched = h.get("SCHEDULD", exp.sched == "S")
            lines += [
                "//", "// Exposure Record", f"// Observation Level Exposure Index = {obs_index}",
                f"// Instrument [{inst}] Level Exposure Identifier = {exp.expid}",
                f"// Instrument [{inst}] Level Exposure Index = {i}", "//", "EXPOSURE",
                f"{exp.num} / Exposure Identifier [also {exp.expid}]",
                f"{'Y' if sched else 'N'} / Is this a scheduled exposure?",
                f"{str(h.get('EXPTYPE', 'SCIENCE')).strip()} / Exposure Type",
                f"{expid} / Commanded Exposure Identifier",
                f"{expid} / Proposal Exposure Identifier",
                f"{start} / Scheduled Start Time", f"{end} / Scheduled End Time",
                f"{start} / Actual Start Time", f"{end} / Actual End Time",
                "//", f"// Configuration Record for {inst}", "//",
            ]
            mode = str(h.get("SUBMODE", "UNDEFINED")).strip()
            unit = "window" if inst == "OM" else "CCD"
            params = [f"MODE = {mode} / Instrument configuration "]
            params += [f"CALIBRATION_MODE_{c} = {mode} / Mode used to calibrate events from {unit} {c}" for c in sorted(exp.ccds)]
            params += [f"DATA_MODE_{c} = {m} / Data mode for {unit} {c}" for c, m in sorted(exp.ccds.items())]
            if h.get("FILTER") is not None and inst not in ("R1", "R2"):
                params.append(f"FILTER = {str(h['FILTER']).strip()} // Filter")
            lines += [f"CONFIGURATION {_CONFIG_TITLE[inst]}", f"{len(params)} / Number of configuration parameters available"]
            lines += params
    for name, rec in odf.records:
        if name in ("PROPOSAL", "DATA QUALITY"):
            if name == "PROPOSAL":
                asc_name = next(n for n in odf.files if n.endswith("SUM.ASC"))
                lines.append(f"// The PROPOSAL record was extracted from {asc_name}")
            lines += rec
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    os.chmod(out, 0o644)
    return 0
