"""Synthetic ODF archives: tiny, deterministic stand-ins for what the XMM-Newton archive ships.

The demo, the tests and the benchmarks need archives of many observations that exercise every
branch of unit selection (scheduled and unscheduled exposures, timing modes, closed filters,
a MOS with a lost CCD, OM-only observations) without downloading gigabytes. Each ODF here
has the real file names (``{rev}_{obsid}_{inst}{S|U}{nnn}{cc}{TYPE}.FIT``) and the header
keywords the stand-in ``odfingest`` reads, and nothing else: a few KB per file, so 2000
observations take seconds.

Per observation ``<root>/<obsid>/``:

- ``{rev}_{obsid}_SCX00000SUM.ASC``: the OBSERVATION record (ObsID, revolution, start, end,
  in odfingest's ``VALUE / Comment`` lines), the CONFIGURATION record and a PROPOSAL record
  (target name, pointing RA in hours and Dec, as the real one writes them);
- per exposure ``{rev}_{obsid}_{inst}{S|U}{nnn}00AUX.FIT`` with INSTRUME, OBS_ID, EXPIDSTR,
  EXP_ID, EXPTYPE, SCHEDULD, SUBMODE, FILTER (not for RGS), DATE-OBS, DATE-END;
- per CCD ``{rev}_{obsid}_{inst}{S|U}{nnn}{cc}{TYPE}.FIT`` (IME imaging, TIE timing, DLI/HDI
  diagnostic, SPE RGS, IMI OM) with CCDID and DATAMODE; ``cc`` is ``01``..``12`` for PN,
  ``10``..``70`` (CCD then node) for MOS, ``11``..``91`` for RGS, ``01`` for OM;
- ``{rev}_{obsid}_SCX00000ATS.FIT`` and ``..._SCX00000TCS.FIT``.
"""

from __future__ import annotations

__all__ = ["ExposureSpec", "ObsSpec", "MIXES", "NAME_RE", "spec_for", "spec_from_summary", "write_odf", "write_archive",
           "main"]

import argparse
import gzip
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from daxa_xmm.odf.models import OdfSummary

#: How real ODF constituent names look (the SUM.ASC and spacecraft files use inst SC, X00000).
NAME_RE = re.compile(r"^(\d{4})_(\d{10})_(PN|M1|M2|R1|R2|OM|SC)([SUX])(\d{3})(\d{2})([A-Z]{3})\.(FIT|ASC)(\.gz)?$")

_INSTRUME = {"PN": "EPN", "M1": "EMOS1", "M2": "EMOS2", "R1": "RGS1", "R2": "RGS2", "OM": "OM"}
_ALL_CCDS = {"PN": tuple(range(1, 13)), "M1": tuple(range(1, 8)), "M2": tuple(range(1, 8)),
             "R1": tuple(range(1, 10)), "R2": tuple(range(1, 10)), "OM": (0,)}
_TYPE = {"Imaging": "IME", "Timing": "TIE", "Diagnostic": "DLI", "Spectroscopy": "SPE", "Offset": "HDI"}


@dataclass(frozen=True)
class ExposureSpec:
    """One exposure of one instrument.

    Attributes:
        inst: PN, M1, M2, R1, R2 or OM.
        exp_id: e.g. ``S003`` or ``U002``.
        submode: SUBMODE, e.g. PrimeFullWindow, FastTiming, RGS Spectroscopy.
        filter: FILTER (ignored for RGS); None writes no FILTER keyword.
        datamode: DATAMODE of its CCD files (Imaging, Timing, Diagnostic, Offset...).
        ccds: CCD ids (None: all the instrument's CCDs).
        exptype: EXPTYPE, SCIENCE unless calibration.
    """

    inst: str
    exp_id: str
    submode: str = "PrimeFullWindow"
    filter: str | None = "Thin1"
    datamode: str = "Imaging"
    ccds: tuple[int, ...] | None = None
    exptype: str = "SCIENCE"


@dataclass(frozen=True)
class ObsSpec:
    """One observation: revolution, times, exposures and pointing.

    ``target`` (default ``SYNTH-<obsid>``), ``ra_deg`` and ``dec_deg`` go into the PROPOSAL
    record; ``ra_deg=None`` writes none (an ODF without one).
    """

    revolution: str = "0828"
    start: datetime = datetime(2004, 6, 17, 10, 38, 28)
    duration_s: float = 4 * 3600.0
    exposures: tuple[ExposureSpec, ...] = field(default_factory=tuple)
    target: str = ""
    ra_deg: float | None = 149.5923
    dec_deg: float = -11.0597

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)


def _standard() -> tuple[ExposureSpec, ...]:
    return (ExposureSpec("M1", "S001"), ExposureSpec("M2", "S002"), ExposureSpec("PN", "S003", "PrimeFullWindowExtended"),
            ExposureSpec("R1", "S004", "Spectroscopy", datamode="Spectroscopy"),
            ExposureSpec("R2", "S005", "Spectroscopy", datamode="Spectroscopy"))


#: Named observation specs; ``demo`` cycles standard, multi_pn, timing.
MIXES: dict[str, tuple[ExposureSpec, ...]] = {
    "standard": _standard(),
    "multi_pn": (
        ExposureSpec("PN", "S003"), ExposureSpec("PN", "S004"), ExposureSpec("PN", "U002"),
        ExposureSpec("PN", "U005", "PrimeFullWindow", datamode="Diagnostic", ccds=(1,)),
        ExposureSpec("PN", "U006", "PrimeFullWindow", datamode="Offset", ccds=(1, 2, 3)),
        ExposureSpec("M1", "S001", ccds=(1, 2, 3, 4, 5, 7)), ExposureSpec("M2", "S002"),
    ),
    "timing": (
        ExposureSpec("PN", "S003", "FastTiming", datamode="Timing", ccds=(4,)),
        ExposureSpec("M1", "S001"), ExposureSpec("M2", "S002", filter="CalClosed"),
        ExposureSpec("R1", "S004", "Spectroscopy", datamode="Spectroscopy"),
        ExposureSpec("R2", "S005", "Spectroscopy", datamode="Spectroscopy"),
    ),
    "om_only": (ExposureSpec("OM", "S006", "Imaging", filter="V", datamode="Imaging"),),
    "closed_filter": (ExposureSpec("PN", "S003", filter="Closed"), ExposureSpec("M1", "S001", filter="CalClosed"),
                      ExposureSpec("M2", "S002", filter="Blocked")),
}
_DEMO = ("standard", "multi_pn", "timing")


def spec_for(mix: str, index: int, rng: random.Random) -> ObsSpec:
    """The ObsSpec of observation ``index`` of a mix (``random`` draws a realistic one)."""
    start = datetime(2004, 1, 1) + timedelta(days=rng.randrange(0, 7000), seconds=rng.randrange(0, 86400))
    rev = f"{(start - datetime(2000, 1, 1)).days // 2 + 100:04d}"
    duration = rng.choice((2, 3, 4, 6, 8)) * 3600.0
    if mix == "demo":
        name = _DEMO[index % len(_DEMO)]
    elif mix == "random":
        name = rng.choices(list(MIXES), weights=(70, 10, 8, 6, 6))[0]
    elif mix in MIXES:
        name = mix
    else:
        raise ValueError(f"unknown mix {mix!r}: choose demo, random or one of {sorted(MIXES)}")
    # pointings spread over the sky by index, not drawn from rng: the draws stay those of older archives
    ra, dec = (150.0 + 7.5 * index) % 360.0, -60.0 + (13.0 * index) % 120.0
    return ObsSpec(revolution=rev, start=start.replace(microsecond=0), duration_s=duration, exposures=MIXES[name],
                   ra_deg=ra, dec_deg=dec)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _sum_asc(obsid: str, spec: ObsSpec) -> str:
    return "\n".join([
        "//", "// ODF Summary File (synthetic, daxa_xmm.standin.synth)", "//",
        "// Observation Record", "//",
        "OBSERVATION",
        f"{obsid} / Observation Identifier",
        f"{spec.revolution} / Revolution Identifier",
        f"{_iso(spec.start)}.000 / Observation Start Time",
        f"{_iso(spec.end)}.000 / Observation End Time",
        "//", "// Configuration Record", "//",
        "CONFIGURATION",
        "2",
        "ODF_VERSION = 003 / Qcheck reset ODF version",
        "PRIME_INSTR = E3 / Prime Instrument",
        *_proposal(obsid, spec),
        "//", "",
    ])


def _proposal(obsid: str, spec: ObsSpec) -> list[str]:
    """The PROPOSAL record's pointing lines (RA in hours, as the real record writes it)."""
    if spec.ra_deg is None:
        return []
    ra_h = spec.ra_deg / 15.0
    return ["//", "PROPOSAL", "Dr    A                   SYNTHETIC", f"{spec.target or 'SYNTH-' + obsid:<20} / Target Name",
            f"{ra_h:.7f} / Target Right Ascension", f"{spec.dec_deg:.7f} / Target Declination",
            f"{ra_h:.7f} / Boresight Right Ascension", f"{spec.dec_deg:.7f} / Boresight Declination"]


def _card(key: str, value: object, comment: str) -> str:
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, int):
        text = f"{value:>20d}"
    else:
        quoted = str(value).replace("'", "''")
        text = f"'{quoted:<8}'"
    card = f"{key:<8}= {text} / {comment}"
    return card[:80].ljust(80)


def _fits_bytes(cards: list[tuple[str, object, str]]) -> bytes:
    """A header-only primary HDU, written by hand: astropy costs ~1 ms a file, 2000 ODFs minutes."""
    lines = [_card("SIMPLE", True, "file does conform to FITS standard"),
             _card("BITPIX", 8, "number of bits per data pixel"),
             _card("NAXIS", 0, "number of data axes"),
             _card("EXTEND", True, "FITS dataset may contain extensions")]
    lines += [_card(k, v, c) for k, v, c in cards]
    lines.append("END".ljust(80))
    text = "".join(lines)
    return text.ljust(-(-len(text) // 2880) * 2880).encode("ascii")


def _ccd_code(inst: str, ccd: int) -> str:
    if inst in ("M1", "M2"):
        return f"{ccd}0"
    if inst in ("R1", "R2"):
        return f"{ccd}1"
    return f"{ccd:02d}"


def _write(path: Path, data: bytes, gz: bool) -> None:
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, compresslevel=1, mtime=0)
    path.write_bytes(data)


def write_odf(root: Path | str, obsid: str, spec: ObsSpec, *, gzip: bool = False) -> Path:
    """Write one ODF folder ``<root>/<obsid>/``; returns it.

    Args:
        root: the archive folder.
        obsid: 10-digit ObsID.
        spec: what the observation holds.
        gzip: write ``*.FIT.gz`` instead of ``*.FIT`` (the SUM.ASC stays plain text).
    """
    if not re.fullmatch(r"\d{10}", obsid):
        raise ValueError(f"ObsID must be 10 digits, got {obsid!r}")
    final = Path(root) / obsid
    # Built in a hidden sibling and renamed into place: a reader never sees half an ODF.
    folder = Path(root) / f".{obsid}.partial"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    prefix = f"{spec.revolution}_{obsid}_"
    _write(folder / f"{prefix}SCX00000SUM.ASC", _sum_asc(obsid, spec).encode(), False)
    for kind in ("ATS", "TCS"):
        _write(folder / f"{prefix}SCX00000{kind}.FIT",
               _fits_bytes([("OBS_ID", obsid, "Observation Identifier"), ("REVOLUT", int(spec.revolution), "Revolution")]), gzip)
    for n, exp in enumerate(spec.exposures):
        sched, number = exp.exp_id[0], exp.exp_id[1:]
        t0 = spec.start + timedelta(seconds=60 + 30 * n)
        t1 = spec.end - timedelta(seconds=60)
        aux = [
            ("INSTRUME", _INSTRUME[exp.inst], "Instrument"),
            ("OBS_ID", obsid, "Observation Identifier"),
            ("EXPIDSTR", exp.exp_id, "Exposure ID"),
            ("EXP_ID", f"{obsid}{exp.inst}{exp.exp_id}", "Exposure Identifier"),
            ("EXPTYPE", exp.exptype, "Exposure type"),
            ("SCHEDULD", sched == "S", "Scheduled exposure?"),
            ("SUBMODE", exp.submode, "Guest Observer mode"),
        ]
        if exp.inst not in ("R1", "R2") and exp.filter is not None:
            aux.append(("FILTER", exp.filter, "Filter ID"))
        aux += [("DATE-OBS", _iso(t0), "Start time of exposure"), ("DATE-END", _iso(t1), "End time of exposure")]
        stem = f"{prefix}{exp.inst}{sched}{number}"
        _write(folder / f"{stem}00AUX.FIT", _fits_bytes(aux), gzip)
        ftype = "IMI" if exp.inst == "OM" else _TYPE.get(exp.datamode, "IME")
        for ccd in exp.ccds if exp.ccds is not None else _ALL_CCDS[exp.inst]:
            cards = [("INSTRUME", _INSTRUME[exp.inst], "Instrument"), ("OBS_ID", obsid, "Observation Identifier"),
                     ("EXPIDSTR", exp.exp_id, "Exposure ID"), ("CCDID", ccd, "CCD identifier"),
                     ("DATAMODE", exp.datamode, "Data mode")]
            _write(folder / f"{stem}{_ccd_code(exp.inst, ccd)}{ftype}.FIT", _fits_bytes(cards), gzip)
    if final.exists():
        shutil.rmtree(final)
    folder.replace(final)
    return final


def spec_from_summary(summary: OdfSummary) -> ObsSpec:
    """The ObsSpec of a real observation, from its odfingest summary.

    Every exposure keeps its id, type, mode, filter and CCDs, so an ODF written from it
    holds the same units as the real one: the test of the whole pipeline on the real
    summaries in ``xmm-samples`` processes exactly the PN, MOS and RGS units real SAS would.
    An exposure's CCDs take their most common data mode (the ODF writer has one per
    exposure); OM windows become one window.
    """
    obs = summary.observation
    exposures = []
    for inst, info in summary.instruments.items():
        if inst not in _INSTRUME:
            continue
        for exp_id, e in info.exposures.items():
            modes = list(e.ccd_modes.values())
            datamode = max(set(modes), key=modes.count) if modes else "Imaging"
            exposures.append(ExposureSpec(
                inst=inst, exp_id=exp_id, submode=e.mode, datamode=datamode, exptype=e.type,
                filter=None if e.filter == "UNDEFINED" else e.filter,
                ccds=tuple(sorted(e.ccd_modes)) if e.ccd_modes else None,
            ))
    return ObsSpec(revolution=obs.revolution, start=obs.start.replace(microsecond=0, tzinfo=None),
                   duration_s=(obs.end - obs.start).total_seconds(), exposures=tuple(exposures))


def write_archive(root: Path | str, n: int = 3, *, mix: str = "demo", seed: int = 0,
                  start_obsid: int = 100000001, gzip: bool = False) -> list[str]:
    """Write ``n`` observations into ``root``; returns their ObsIDs (deterministic in ``seed``)."""
    rng = random.Random(seed)
    obsids = []
    for i in range(n):
        obsid = f"{start_obsid + i:010d}"
        write_odf(root, obsid, spec_for(mix, i, rng), gzip=gzip)
        obsids.append(obsid)
    return obsids


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daxa_xmm.standin.synth ROOT -n N --mix demo [--seed S] [--gzip]``."""
    ap = argparse.ArgumentParser(prog="python -m daxa_xmm.standin.synth", description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--mix", default="demo", choices=["demo", "random", *MIXES])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-obsid", type=int, default=100000001)
    ap.add_argument("--gzip", action="store_true")
    ns = ap.parse_args(argv)
    for obsid in write_archive(ns.root, ns.n, mix=ns.mix, seed=ns.seed, start_obsid=ns.start_obsid, gzip=ns.gzip):
        print(obsid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
