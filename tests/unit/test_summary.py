"""Tests of daxa_xmm.summary: the real odfingest summary, synthetic files, malformed input.

Synthetic summaries are written by the small writer below, in the real format (copied from
odfingest 3.30's ``0828_0201903501_SCX00000SUM.SAS``), so every code path is covered without
the real samples; the real file is pinned where present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daxa_xmm.errors import SummaryParseError
from daxa_xmm.models import OdfSummary
from daxa_xmm.summary import parse_odf_sum, read_observation_record, read_odf_summary
from daxa_xmm.summary_records import read_records

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


# --------------------------------------------------------------------------- real file

REAL = "odf_summaries/0828_0201903501_SCX00000SUM.SAS"


@pytest.fixture(scope="module")
def real(xmm_samples: Path) -> OdfSummary:
    return read_odf_summary(xmm_samples / REAL, obs_id="0201903501")


def test_real_observation_record(real: OdfSummary) -> None:
    obs = real.observation
    assert obs.obsid == "0201903501"
    assert obs.revolution == "0828"
    assert obs.start == datetime(2004, 6, 17, 10, 38, 28, tzinfo=timezone.utc)
    assert obs.end == datetime(2004, 6, 17, 14, 47, 1, tzinfo=timezone.utc)
    assert obs.sas_version == "xmmsas_20141104_1833-14.0.0"
    assert obs.odfingest_version == "3.30"


def test_real_files_list(real: OdfSummary) -> None:
    assert len(real.files) == 176
    assert real.files[0] == "0828_0201903501_M1S00100AUX.FIT"
    assert real.files[-1] == "0828_0201903501_SCX00000TCX.FIT"
    assert "0828_0201903501_PNU01312DLI.FIT" in real.files


@pytest.mark.parametrize(
    ("inst", "num_exp", "exp_ids"),
    [
        ("M1", 1, ["S001"]),
        ("M2", 1, ["S002"]),
        ("R1", 10, ["S004"] + [f"S{n}" for n in range(900, 909)]),
        ("R2", 10, ["S005"] + [f"S{n}" for n in range(900, 909)]),
        ("PN", 13, ["S003"] + [f"U{n:03d}" for n in range(2, 14)]),
        ("OM", 11, ["S006", "S007"] + [f"S{n}" for n in range(400, 409)]),
    ],
)
def test_real_instruments(real: OdfSummary, inst: str, num_exp: int, exp_ids: list[str]) -> None:
    info = real.instruments[inst]
    assert info.active is True
    assert info.num_exp == num_exp
    assert list(info.exposures) == exp_ids
    assert len(info.exposures) == info.num_exp


def test_real_instrument_order(real: OdfSummary) -> None:
    assert list(real.instruments) == ["M1", "M2", "R1", "R2", "PN", "OM"]


def test_real_pn_s003(real: OdfSummary) -> None:
    e = real.instruments["PN"].exposures["S003"]
    assert (e.scheduled, e.type, e.mode, e.filter) == (True, "SCIENCE", "PrimeFullWindowExtended", "Thin1")
    assert e.ccd_modes == {c: "Imaging" for c in range(1, 13)}
    assert e.start == datetime(2004, 6, 17, 11, 30, 44, tzinfo=timezone.utc)
    assert e.end == datetime(2004, 6, 17, 14, 38, 43, tzinfo=timezone.utc)


def test_real_pn_unscheduled(real: OdfSummary) -> None:
    pn = real.instruments["PN"].exposures
    u002, u003, u013 = pn["U002"], pn["U003"], pn["U013"]
    assert (u002.scheduled, u002.type, u002.mode, u002.filter) == (False, "SCIENCE", "Diagnostic", "UNDEFINED")
    assert u002.ccd_modes == {1: "DiscardedLinesData"}
    assert u003.mode == "Offset"
    assert u003.ccd_modes == {c: "OffsetData" for c in range(1, 13)}
    # the last exposure of the PN section
    assert (u013.scheduled, u013.mode, u013.filter) == (False, "Diagnostic", "UNDEFINED")
    assert u013.ccd_modes == {12: "DiscardedLinesData"}
    assert u013.start == datetime(2004, 6, 17, 14, 46, 7, tzinfo=timezone.utc)


def test_real_mos(real: OdfSummary) -> None:
    for inst, exp in (("M1", "S001"), ("M2", "S002")):
        e = real.instruments[inst].exposures[exp]
        assert (e.scheduled, e.type, e.mode, e.filter) == (True, "SCIENCE", "PrimeFullWindow", "Thin1")
        assert e.ccd_modes == {c: "Imaging" for c in range(1, 8)}


def test_real_rgs(real: OdfSummary) -> None:
    spectro = {c: "Spectroscopy" for c in (1, 2, 3, 4, 5, 6, 8, 9)}
    r1 = real.instruments["R1"].exposures
    assert (r1["S004"].mode, r1["S004"].filter) == ("HighEventRateWithSES", "UNDEFINED")
    assert r1["S004"].ccd_modes == spectro
    assert (r1["S908"].mode, r1["S908"].ccd_modes) == ("Diagnostic3x3", {1: "Diagnostic"})
    r2 = real.instruments["R2"].exposures
    assert r2["S005"].mode == "HighEventRateWithSES"
    assert r2["S908"].mode == "Diagnostic3x3"  # the last exposure of the R2 section


def test_real_om_windows_and_last_exposure(real: OdfSummary) -> None:
    om = real.instruments["OM"].exposures
    # '... / Data mode for window n': OM's windows are not CCDs (DAXA reads CCD lines only)
    assert om["S006"].ccd_modes == {}
    assert (om["S400"].mode, om["S400"].ccd_modes, om["S400"].filter) == ("UNDEFINED", {}, "UVW1")
    last = om["S408"]
    assert (last.mode, last.filter, last.ccd_modes) == ("Image", "UVM2", {})


def test_real_daxa_dict_parity(real: OdfSummary) -> None:
    """DAXA 0.3.7's parse_odf_sum: no FILTER line -> filter None; ccd_modes from the
    '... / Data mode for CCD n' lines only."""
    d = real.to_daxa_dict()
    exps = {(i, e): v for i, inst in d.items() for e, v in inst["exposures"].items()}
    no_filter = [k for k, v in exps.items() if v["filter"] is None]
    assert no_filter and "UNDEFINED" not in {v["filter"] for v in exps.values()}
    assert all(k[0] in ("R1", "R2") or real.instruments[k[0]].exposures[k[1]].filter == "UNDEFINED" for k in no_filter)
    assert d["OM"]["exposures"]["S408"]["ccd_modes"] == {}
    assert d["PN"]["exposures"]["S003"]["ccd_modes"] == {c: "Imaging" for c in range(1, 13)}


def test_real_last_lines_are_read(xmm_samples: Path) -> None:
    """DAXA dropped the last line of the last instrument section: every line is read here."""
    records = read_records(xmm_samples / REAL)
    om_configs = [r for r in records if r.kind == "CONFIGURATION" and r.header == "CONFIGURATION OM"]
    assert om_configs[-1].lines[-1][1] == "FLOOD_LED_BIAS = 0 // LED Status"
    last = records[-1]
    assert last.kind == "DATA QUALITY"
    assert last.lines[-1] == (4277, "X / Scheduled flag")
    assert last.lines[0] == (4269, "SC / Instrument Id")
    assert sum(1 for r in records if r.kind == "EXPOSURE") == 1 + 1 + 10 + 10 + 13 + 11


def test_real_daxa_dict(xmm_samples: Path) -> None:
    d = parse_odf_sum(xmm_samples / REAL, "0201903501")
    assert set(d) == {"M1", "M2", "R1", "R2", "PN", "OM"}
    assert d["PN"]["active"] is True and d["PN"]["num_exp"] == 13
    assert d["PN"]["exposures"]["S003"] == {
        "scheduled": True,
        "type": "SCIENCE",
        "mode": "PrimeFullWindowExtended",
        "filter": "Thin1",
        "ccd_modes": {c: "Imaging" for c in range(1, 13)},
    }
    assert d["M1"]["exposures"]["S001"]["filter"] == "Thin1"


def test_real_observation_record_only(xmm_samples: Path) -> None:
    obs = read_observation_record(xmm_samples / REAL, obs_id="0201903501")
    assert (obs.obsid, obs.revolution, obs.start.date().isoformat()) == ("0201903501", "0828", "2004-06-17")


def test_real_wrong_obsid(xmm_samples: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line 16: summary is for ObsID 0201903501, expected 0123456789"):
        read_odf_summary(xmm_samples / REAL, obs_id="0123456789")


# --------------------------------------------------------------------------- synthetic files


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    return write_summary(tmp_path / "0828_0201903501_SCX00000SUM.SAS")


def test_synthetic_round_trip(synthetic: Path) -> None:
    s = read_odf_summary(synthetic, obs_id="0201903501")
    assert list(s.instruments) == ["M1", "M2", "R1", "PN", "OM"]
    assert s.instruments["M2"].exposures["S002"].ccd_modes == {c: "Imaging" for c in (1, 2, 3, 4, 5, 7)}
    pn = s.instruments["PN"]
    assert (pn.num_exp, list(pn.exposures)) == (3, ["S003", "U002", "U003"])
    assert pn.exposures["U002"].scheduled is False
    assert pn.exposures["S003"].filter == "Thin1"
    assert s.instruments["R1"].exposures["S004"].filter == "UNDEFINED"
    assert s.observation.sas_version == "xmmsas_20141104_1833-14.0.0"
    assert s.files[-1] == "0828_0201903501_SCX00000SUM.SAS"


def test_synthetic_daxa_dict_matches_model(synthetic: Path) -> None:
    assert parse_odf_sum(synthetic) == read_odf_summary(synthetic).to_daxa_dict()


def test_values_with_spaces_and_both_comment_styles(tmp_path: Path) -> None:
    p = write_summary(tmp_path / "s.SAS", [Inst("M1", [Exp("001", filter="Medium")])])
    assert read_odf_summary(p).instruments["M1"].exposures["S001"].filter == "Medium"


def test_inactive_instrument(tmp_path: Path) -> None:
    p = write_summary(tmp_path / "s.SAS", [Inst("M1", [], active=False), Inst("PN", [Exp("003")])])
    s = read_odf_summary(p)
    assert (s.instruments["M1"].active, s.instruments["M1"].num_exp, s.instruments["M1"].exposures) == (False, 0, {})


def test_exposure_without_configuration(tmp_path: Path) -> None:
    p = write_summary(tmp_path / "s.SAS", [Inst("PN", [Exp("003", with_config=False)])])
    e = read_odf_summary(p).instruments["PN"].exposures["S003"]
    assert (e.mode, e.filter, e.ccd_modes) == ("UNDEFINED", "UNDEFINED", {})


def test_crlf_and_missing_final_newline(tmp_path: Path) -> None:
    text = summary_text(typical_instruments()).rstrip("\n").replace("\n", "\r\n")
    p = tmp_path / "s.SAS"
    p.write_bytes(text.encode())
    assert list(read_odf_summary(p).instruments) == ["M1", "M2", "R1", "PN", "OM"]


def test_id_without_also_part_uses_scheduled_flag(tmp_path: Path) -> None:
    text = summary_text([Inst("PN", [Exp("005", prefix="U")])]).replace(" [also U005]", "")
    p = tmp_path / "s.SAS"
    p.write_text(text)
    assert list(read_odf_summary(p).instruments["PN"].exposures) == ["U005"]


def test_sum_asc_observation_record(tmp_path: Path) -> None:
    p = tmp_path / "0828_0201903501_SCX00000SUM.ASC"
    p.write_text(sum_asc_text())
    obs = read_observation_record(p, obs_id="0201903501")
    assert (obs.obsid, obs.revolution, obs.sas_version) == ("0201903501", "0828", None)
    assert obs.end == datetime(2004, 6, 17, 14, 47, 1, tzinfo=timezone.utc)
    # a SUM.ASC is not an odfingest summary
    with pytest.raises(SummaryParseError, match="no FILES record"):
        read_odf_summary(p)


def test_observation_record_from_synthetic_summary(synthetic: Path) -> None:
    assert read_observation_record(synthetic).odfingest_version == "3.30"


# --------------------------------------------------------------------------- malformed input


def _write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "bad_SUM.SAS"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _lines_of(text: str) -> list[str]:
    return text.split("\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="nope.SAS: file not found"):
        read_odf_summary(tmp_path / "nope.SAS")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="cannot read"):
        read_odf_summary(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty(tmp_path: Path, text: str) -> None:
    with pytest.raises(SummaryParseError, match="file is empty"):
        read_odf_summary(_write(tmp_path, text))


def test_binary_garbage(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line 2: binary content"):
        read_odf_summary(_write(tmp_path, b"SIMPLE  =   T\n\x00\x01\x02\xff"))


def test_control_characters(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line 1: control characters"):
        read_odf_summary(_write(tmp_path, b"\x1b[31mOBSERVATION\n"))


def test_invalid_utf8_is_not_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError):
        read_odf_summary(_write(tmp_path, b"\xff\xfe\xfd garbage\n"))


def test_missing_observation_record(tmp_path: Path) -> None:
    p = _write(tmp_path, summary_text(typical_instruments(), with_observation=False))
    with pytest.raises(SummaryParseError, match="no OBSERVATION record"):
        read_odf_summary(p)
    with pytest.raises(SummaryParseError, match="no OBSERVATION record"):
        read_observation_record(p)


def test_obsid_mismatch(synthetic: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line \d+: summary is for ObsID 0201903501, expected 0000000001"):
        read_odf_summary(synthetic, obs_id="0000000001")


def test_stated_exposure_count_differs(tmp_path: Path) -> None:
    p = _write(tmp_path, summary_text([Inst("M1", [Exp("001")]), Inst("PN", [Exp("003")], num_exp=2)]))
    with pytest.raises(SummaryParseError, match=r"line \d+: instrument PN states 2 exposures but 1 EXPOSURE"):
        read_odf_summary(p)


def test_stated_file_count_differs(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="FILES record states 99 files"):
        read_odf_summary(_write(tmp_path, summary_text(typical_instruments(), stated_files=99)))


def test_truncated_mid_exposure_configuration(tmp_path: Path) -> None:
    lines = _lines_of(summary_text(typical_instruments()))
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("DATA_MODE_5 = OffsetData"))
    p = _write(tmp_path, "\n".join(lines[:cut]))
    with pytest.raises(SummaryParseError, match=r"line \d+: CONFIGURATION record \(line \d+\) states"):
        read_odf_summary(p)


def test_truncated_mid_exposure_record(tmp_path: Path) -> None:
    lines = _lines_of(summary_text([Inst("PN", [Exp("003")])]))
    cut = next(i for i, ln in enumerate(lines) if ln.endswith("/ Exposure Type"))
    with pytest.raises(SummaryParseError, match="EXPOSURE record .* has no Exposure Type line"):
        read_odf_summary(_write(tmp_path, "\n".join(lines[:cut])))


def test_truncated_mid_data_quality(tmp_path: Path) -> None:
    text = summary_text(typical_instruments()).rstrip()
    text = text[: text.rindex("S / Scheduled flag")]
    with pytest.raises(SummaryParseError, match="DATA QUALITY record does not end"):
        read_odf_summary(_write(tmp_path, text))


def test_truncated_after_instrument_header(tmp_path: Path) -> None:
    lines = _lines_of(summary_text(typical_instruments()))
    cut = max(i for i, ln in enumerate(lines) if ln == "INSTRUMENT") + 4
    with pytest.raises(SummaryParseError, match="instrument OM states 1 exposures but 0"):
        read_odf_summary(_write(tmp_path, "\n".join(lines[:cut])))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0201903501 / Observation Identifier", "020190350 / Observation Identifier", "ObsID must be 10 digits"),
        ("0828 / Revolution Identifier", "828 / Revolution Identifier", "revolution must be 4 digits"),
        ("2004-06-17T10:38:28.000 / Observation Start", "yesterday / Observation Start", "not a time"),
        ("Y / Is this instrument active?", "maybe / Is this instrument active?", "must be Y or N"),
        ("1 / Number of exposures", "one / Number of exposures", "must be a whole number"),
        ("001 / Exposure Identifier [also S001]", "001 / Exposure Identifier [also S002]", "disagrees with"),
        ("001 / Exposure Identifier", "0x1 / Exposure Identifier", "expected 'NNN / Exposure Identifier"),
        ("Y / Is this a scheduled exposure?", "yes / Is this a scheduled exposure?", "must be Y or N"),
        ("SCIENCE / Exposure Type", " / Exposure Type", "empty Exposure Type"),
        ("FILTER = Thin1 // Filter", "FILTER Thin1", "expected 'KEY = VALUE'"),
        ("FRAME_TIME_PARAMETER = 3", "MODE = 3", "MODE appears twice"),
        ("INSTRUMENT\nM1\n", "INSTRUMENT\nM1 camera\n", "not an instrument id"),
        ("INSTRUMENT\nM1\n", "INSTRUMENT\n", "INSTRUMENT record needs 3 lines"),
        ("5\nODF_VERSION", "five\nODF_VERSION", "number of configuration parameters"),
        ("PATH /data", "STRAY LINE\nPATH /data", "line outside any record"),
    ],
)
def test_malformed_fields(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = summary_text([Inst("M1", [Exp("001")])])
    assert old in text
    with pytest.raises(SummaryParseError, match=re.escape(message)):
        read_odf_summary(_write(tmp_path, text.replace(old, new, 1)))


def test_duplicates(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="PN S003 appears twice"):
        read_odf_summary(_write(tmp_path, summary_text([Inst("PN", [Exp("003"), Exp("003")])])))
    with pytest.raises(SummaryParseError, match="second INSTRUMENT record for PN"):
        read_odf_summary(_write(tmp_path, summary_text([Inst("PN", [Exp("003")]), Inst("PN", [Exp("004")])])))
    text = summary_text([Inst("PN", [Exp("003")])])
    obs = text[text.index("OBSERVATION") : text.index("// Number of files")]
    with pytest.raises(SummaryParseError, match="second OBSERVATION record"):
        read_odf_summary(_write(tmp_path, text.replace("// Number of files", obs + "// Number of files", 1)))


def test_exposure_before_instrument(tmp_path: Path) -> None:
    record = "INSTRUMENT\nPN\nY / Is this instrument active?\n1 / Number of exposures for this instrument\n"
    text = summary_text([Inst("PN", [Exp("003")])]).replace(record, "")
    with pytest.raises(SummaryParseError, match="EXPOSURE record before any INSTRUMENT"):
        read_odf_summary(_write(tmp_path, text))


def test_configuration_without_exposure(tmp_path: Path) -> None:
    text = summary_text([Inst("PN", [Exp("003")])])
    block = text[text.index("CONFIGURATION EPIC PN") : text.index("// The PROPOSAL")]
    text = text.replace("// The PROPOSAL", block + "// The PROPOSAL", 1)
    with pytest.raises(SummaryParseError, match="CONFIGURATION record that follows no EXPOSURE"):
        read_odf_summary(_write(tmp_path, text))


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daxa_xmm.summary_records as summary_records

    monkeypatch.setattr(summary_records, "MAX_SUMMARY_BYTES", 10)
    with pytest.raises(SummaryParseError, match="too large"):
        read_odf_summary(_write(tmp_path, "OBSERVATION\n0201903501 / Observation Identifier\n"))


def test_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_odf_sum(tmp_path / "missing.SAS")


# --------------------------------------------------------------------------- properties

_VALID = summary_text(typical_instruments())
_VALID_LINES = _lines_of(_VALID)


def _parse_text(tmp_path: Path, text: str | bytes) -> None:
    """Parse; only SummaryParseError may escape. Returns normally on success."""
    p = _write(tmp_path, text)
    try:
        read_odf_summary(p)
    except SummaryParseError as exc:
        assert str(p) in str(exc)
    try:
        read_observation_record(p)
    except SummaryParseError:
        pass


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    _parse_text(tmp_path, data)


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID_LINES)))
def test_truncation_at_any_line(tmp_path: Path, n: int) -> None:
    _parse_text(tmp_path, "\n".join(_VALID_LINES[:n]))


@_SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=len(_VALID_LINES) - 1), min_size=1, max_size=4, unique=True))
def test_line_deletion(tmp_path: Path, drop: list[int]) -> None:
    _parse_text(tmp_path, "\n".join(ln for i, ln in enumerate(_VALID_LINES) if i not in drop))


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID_LINES) - 1), st.text(max_size=40))
def test_line_replacement(tmp_path: Path, index: int, junk: str) -> None:
    lines = list(_VALID_LINES)
    lines[index] = junk
    _parse_text(tmp_path, "\n".join(lines))


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID)))
def test_truncation_at_any_byte(tmp_path: Path, n: int) -> None:
    _parse_text(tmp_path, _VALID.encode()[:n])


def test_every_single_line_deletion_is_detected_or_harmless(tmp_path: Path) -> None:
    """Deleting any one line of a content record either fails cleanly or changes nothing read."""
    def read(text: str) -> tuple:
        s = read_odf_summary(_write(tmp_path, text))
        return s.to_daxa_dict(), s.files, s.observation

    good = read(_VALID)
    for i in range(len(_VALID_LINES)):
        text = "\n".join(ln for j, ln in enumerate(_VALID_LINES) if j != i)
        try:
            got = read(text)
        except SummaryParseError:
            continue
        line = _VALID_LINES[i].strip()
        # lines we do not interpret may go unnoticed; anything else must be caught
        harmless = (
            not line
            or line.startswith("//")
            or "Commanded Exposure" in line
            or "Proposal Exposure" in line
            or "Time" in line
            or "PATH" in line
            or "Number of packets" in line
            or "Telemetry drops" in line
            or "Target Name" in line
            or "priority" in line
            or "Instrument Id" in line
            or "Exposure Id" in line
            or line == "PERSON"
            or "PERSON" in line
            or line in ("PROPOSAL", "DATA QUALITY")
        )
        assert harmless, f"deleting line {i + 1} {line!r} went unnoticed"
        assert got == good, f"deleting line {i + 1} {line!r} changed the result"


def test_no_instruments(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="no INSTRUMENT record"):
        read_odf_summary(_write(tmp_path, summary_text([])))
