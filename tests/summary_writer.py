"""A small writer of odfingest summary files, in the real format (copied from odfingest
3.30's ``0828_0201903501_SCX00000SUM.SAS``), for the tests of daxa_xmm.odf.summary: every code
path of the parser is reached without the real samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------- writer


def _pad(text: str) -> str:
    return text.ljust(80)


@dataclass
class Exp:
    """One synthetic exposure. ``filter=None`` writes no FILTER line."""

    number: str
    prefix: str = "S"
    type: str = "SCIENCE"
    mode: str = "PrimeFullWindow"
    filter: str | None = "Thin1"
    ccd_modes: dict[int, str] = field(default_factory=lambda: {i: "Imaging" for i in range(1, 8)})
    scheduled: bool | None = None  # None: follows the prefix
    with_config: bool = True


@dataclass
class Inst:
    name: str
    exposures: list[Exp]
    active: bool = True
    num_exp: int | None = None  # None: the true count


def _exposure_lines(obsid: str, inst: str, e: Exp, index: int) -> list[str]:
    sched = e.scheduled if e.scheduled is not None else e.prefix == "S"
    eid = f"{e.prefix}{e.number}"
    lines = [
        "//",
        "// Exposure Record",
        f"// Observation Level Exposure Index = {index}",
        f"// Instrument [{inst}] Level Exposure Identifier = {eid}",
        "//",
        "EXPOSURE",
        f"{e.number} / Exposure Identifier [also {eid}]",
        f"{'Y' if sched else 'N'} / Is this a scheduled exposure?",
        f"{e.type} / Exposure Type",
        f"{obsid}{inst}{eid} / Commanded Exposure Identifier",
        f"{obsid}{inst}{eid} / Proposal Exposure Identifier",
        "2004-06-17T10:39:08.000 / Scheduled Start Time",
        "2004-06-17T14:43:39.000 / Scheduled End Time",
        "2004-06-17T10:39:08.000 / Actual Start Time",
        "2004-06-17T14:43:39.000 / Actual End Time",
    ]
    if not e.with_config:
        return lines
    params = [f"MODE = {e.mode} / Instrument configuration "]
    params += [f"CALIBRATION_MODE_{c} = {e.mode} / Mode used to calibrate events from CCD {c}" for c in e.ccd_modes]
    params += [f"DATA_MODE_{c} = {m} / Data mode for CCD {c}" for c, m in e.ccd_modes.items()]
    if e.filter is not None:
        params += ["FILTER_WHEEL = FILTER A // Name of filter wheel position", f"FILTER = {e.filter} // Filter"]
    params.append("FRAME_TIME_PARAMETER = 3 // ")
    kind = {"PN": "EPIC PN", "M1": "EPIC MOS", "M2": "EPIC MOS", "R1": "RGS", "R2": "RGS"}.get(inst, inst)
    return lines + [
        "//",
        f"// Configuration Record for {inst}",
        "//",
        f"CONFIGURATION {kind}",
        f"{len(params)} / Number of configuration parameters available",
        *params,
    ]


def summary_text(
    instruments: list[Inst],
    obsid: str = "0201903501",
    rev: str = "0828",
    *,
    with_observation: bool = True,
    stated_files: int | None = None,
) -> str:
    """The text of a summary file holding ``instruments``."""
    files = [f"{rev}_{obsid}_{i.name}{e.prefix}{e.number}00AUX.FIT" for i in instruments for e in i.exposures]
    files.append(f"{rev}_{obsid}_SCX00000SUM.SAS")
    out = [
        "// ----------------------------------",
        "// XMM-Newton Science Analysis System",
        "// ----------------------------------",
        "//",
        "// ODF Summary File",
        "// By: odfingest(odfingest-3.30) [xmmsas_20141104_1833-14.0.0] on 2020-05-15T12:28:10.000",
        "//",
        f"PATH /data/{obsid}",
        "//",
    ]
    if with_observation:
        out += [
            "// Observation Record",
            "//",
            "OBSERVATION",
            f"{obsid} / Observation Identifier",
            f"{rev} / Revolution Identifier",
            "2004-06-17T10:38:28.000 / Observation Start Time",
            "2004-06-17T14:47:01.000 / Observation End Time",
            "//",
        ]
    out += [
        "// Number of files in the Observation Summary File, and their names",
        "//",
        "FILES",
        f"{len(files) if stated_files is None else stated_files} / Number of Files",
        *(f"{f} / ODF Constituent" for f in files),
        f"// The CONFIGURATION record was extracted from {rev}_{obsid}_SCX00000SUM.ASC",
        _pad("CONFIGURATION"),
        "5",
        _pad("ODF_VERSION = 003 / Qcheck reset ODF version"),
        _pad("PRIME_INSTR = E3 / Prime Instrument"),
        "// odfingest metadata",
        "ODFINGEST_VERSION = 3.30 / odfingest version",
        "SAS_MANIFEST = xmmsas_20141104_1833-14.0.0 / SAS Manifest",
        "PROCESS_DATE = 2020-05-15T12:28:15.000 / Time and Date when summary file produced",
    ]
    index = 1
    for inst in instruments:
        n = len(inst.exposures) if inst.num_exp is None else inst.num_exp
        out += [
            "//",
            "// Instrument Record",
            "//",
            "INSTRUMENT",
            inst.name,
            f"{'Y' if inst.active else 'N'} / Is this instrument active?",
            f"{n} / Number of exposures for this instrument",
        ]
        for e in inst.exposures:
            out += _exposure_lines(obsid, inst.name, e, index)
            index += 1
    out += [
        f"// The PROPOSAL record was extracted from {rev}_{obsid}_SCX00000SUM.ASC",
        _pad("PROPOSAL"),
        _pad("Dr    A                   PERSON"),
        _pad(""),
        _pad("RXCJ0958.3-1103      / Target Name"),
        _pad("  / OM priority"),
    ]
    for inst in ("R1", "SC"):
        out += [
            _pad("DATA QUALITY"),
            _pad(f"{inst} / Instrument Id"),
            _pad(f"{obsid}{inst}004 / Exposure Id"),
            _pad("     / Number of packets that failed reception checking"),
            _pad("   5 / Number of Telemetry drops"),
            _pad("S / Scheduled flag"),
        ]
    return "\n".join(out) + "\n\n"


def typical_instruments() -> list[Inst]:
    """A small observation shaped like the real sample (M1, M2, R1, PN with U exposures, OM)."""
    pn_img = {i: "Imaging" for i in range(1, 13)}
    return [
        Inst("M1", [Exp("001")]),
        Inst("M2", [Exp("002", ccd_modes={i: "Imaging" for i in (1, 2, 3, 4, 5, 7)})]),
        Inst(
            "R1",
            [
                Exp("004", mode="HighEventRateWithSES", filter=None, ccd_modes={i: "Spectroscopy" for i in (1, 2, 3, 4, 5, 6, 8, 9)}),
                Exp("900", mode="Diagnostic3x3", filter=None, ccd_modes={1: "Diagnostic"}),
            ],
        ),
        Inst(
            "PN",
            [
                Exp("003", mode="PrimeFullWindowExtended", ccd_modes=pn_img),
                Exp("002", prefix="U", mode="Diagnostic", filter=None, ccd_modes={1: "DiscardedLinesData"}),
                Exp("003", prefix="U", mode="Offset", filter=None, ccd_modes={i: "OffsetData" for i in range(1, 13)}),
            ],
        ),
        Inst("OM", [Exp("006", mode="Image", filter="UVW1", ccd_modes={0: "Imaging", 1: "Imaging"})]),
    ]


def write_summary(path: Path, instruments: list[Inst] | None = None, **kwargs) -> Path:
    """Write a summary (default :func:`typical_instruments`) to ``path`` and return it."""
    path.write_text(summary_text(typical_instruments() if instruments is None else instruments, **kwargs))
    return path


def sum_asc_text(obsid: str = "0201903501", rev: str = "0828") -> str:
    """An ODF SUM.ASC-like file: padded OBSERVATION record among records we do not read."""
    return "\n".join(
        [
            "// XMM-Newton Observation Data File summary",
            _pad("OBSERVATION"),
            _pad(f"{obsid} / Observation Identifier"),
            _pad(f"{rev} / Revolution Identifier"),
            _pad("2004-06-17T10:38:28.000 / Observation Start Time"),
            _pad("2004-06-17T14:47:01.000 / Observation End Time"),
            _pad("CONFIGURATION"),
            _pad("2"),
            _pad("ODF_VERSION = 003 / Qcheck reset ODF version"),
            _pad("PRIME_INSTR = E3 / Prime Instrument"),
        ]
    ) + "\n"
