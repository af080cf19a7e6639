"""Tests of daxa_xmm.odf.summary: the real odfingest summary and synthetic files.

Synthetic summaries are written by :mod:`tests.summary_writer`, in the real format, so every
code path is covered without the real samples; the real file is pinned where present.
Malformed input is in ``test_summary_malformed.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from daxa_xmm.errors import SummaryParseError
from daxa_xmm.odf.models import OdfSummary
from daxa_xmm.odf.summary import parse_odf_sum, read_observation_record, read_odf_summary
from daxa_xmm.odf.summary_records import read_records
from tests.summary_writer import Exp, Inst, sum_asc_text, summary_text, typical_instruments, write_summary

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
