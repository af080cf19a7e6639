"""Tests of daxa_xmm.odf.selection: the real summary, and one synthetic case per rule."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from daxa_xmm.errors import ConfigError
from daxa_xmm.odf.models import ExposureInfo, InstrumentInfo, ObservationRecord, OdfSummary, Unit
from daxa_xmm.odf.selection import SelectionDecision, explain_selection, select_units
from daxa_xmm.odf.summary import read_odf_summary

OBSID = "0201903501"
PN_ALL = {c: "Imaging" for c in range(1, 13)}
MOS_ALL = {c: "Imaging" for c in range(1, 8)}
RGS_SPEC = {c: "Spectroscopy" for c in (1, 2, 3, 4, 5, 6, 8, 9)}


def _summary(*insts: tuple[str, bool, list[ExposureInfo]]) -> OdfSummary:
    t = datetime(2004, 6, 17, tzinfo=timezone.utc)
    return OdfSummary(
        path="synthetic",
        observation=ObservationRecord(obsid=OBSID, revolution="0828", start=t, end=t),
        instruments={
            name: InstrumentInfo(name=name, active=active, num_exp=len(exps), exposures={e.exp_id: e for e in exps})
            for name, active, exps in insts
        },
    )


def _exp(exp_id: str = "S003", mode: str = "PrimeFullWindow", filt: str = "Thin1", ccd_modes=None, type_: str = "SCIENCE") -> ExposureInfo:
    return ExposureInfo(
        exp_id=exp_id,
        scheduled=exp_id[0] == "S",
        type=type_,
        mode=mode,
        filter=filt,
        ccd_modes=PN_ALL if ccd_modes is None else ccd_modes,
    )


def _one(inst: str, exp: ExposureInfo, active: bool = True, **kwargs) -> SelectionDecision:
    (decision,) = explain_selection(_summary((inst, active, [exp])), **kwargs)
    return decision


# --------------------------------------------------------------------------- real file


@pytest.fixture(scope="module")
def real(xmm_samples: Path) -> OdfSummary:
    return read_odf_summary(xmm_samples / "odf_summaries/0828_0201903501_SCX00000SUM.SAS")


def test_real_units(real: OdfSummary) -> None:
    units = select_units(real)
    assert [u.label for u in units] == [
        "0201903501M1S001",
        "0201903501M2S002",
        "0201903501R1S004",
        "0201903501R2S005",
        "0201903501PNS003",
    ]
    pn = units[-1]
    assert pn == Unit(obsid=OBSID, inst="PN", exp_id="S003", mode="PrimeFullWindowExtended", filter="Thin1", ccds=tuple(range(1, 13)))
    assert units[0].ccds == tuple(range(1, 8))
    assert units[2].ccds == () and units[2].filter == "UNDEFINED"


def test_real_explanations(real: OdfSummary) -> None:
    why = {(d.inst, d.exp_id): d for d in explain_selection(real)}
    assert len(why) == 1 + 1 + 10 + 10 + 13 + 11  # every exposure, OM included
    for n in (2, *range(4, 14)):
        d = why[("PN", f"U{n:03d}")]
        assert not d.kept and "Diagnostic is not a science mode" in d.reason
    assert "Offset is not a science mode" in why[("PN", "U003")].reason
    assert not why[("R1", "S900")].kept and "Diagnostic3x3" in why[("R1", "S900")].reason
    assert why[("R2", "S908")].kept is False
    assert all(not d.kept and "OM is not processed" in d.reason for k, d in why.items() if k[0] == "OM")
    assert why[("PN", "S003")].kept and "imaging CCDs 1,2,3,4,5,6,7,8,9,10,11,12" in why[("PN", "S003")].reason


def test_real_without_unscheduled_and_only_pn(real: OdfSummary) -> None:
    units = select_units(real, instruments=("PN",), process_unscheduled=False)
    assert [u.exp_id for u in units] == ["S003"]
    d = {(x.inst, x.exp_id): x for x in explain_selection(real, instruments="PN", process_unscheduled=False)}
    assert d[("PN", "U002")].reason == "unscheduled exposure and process_unscheduled is off"
    assert d[("M1", "S001")].reason == "M1 not among the requested instruments"


# --------------------------------------------------------------------------- one case per rule


@pytest.mark.parametrize(
    ("inst", "exp", "active", "kwargs", "kept", "reason"),
    [
        ("PN", _exp(), True, {}, True, "SCIENCE PrimeFullWindow Thin1, imaging CCDs 1,2,3,4,5,6,7,8,9,10,11,12"),
        ("PN", _exp(), False, {}, False, "PN was not active"),
        ("PN", _exp(), True, {"instruments": ("M1",)}, False, "PN not among the requested instruments"),
        ("OM", _exp(mode="Image", filt="UVW1"), True, {}, False, "OM is not processed"),
        ("PN", _exp("X001"), True, {}, False, "X001 is not a scheduled or unscheduled exposure"),
        ("PN", _exp("U004"), True, {}, True, "SCIENCE PrimeFullWindow"),
        ("PN", _exp("U004"), True, {"process_unscheduled": False}, False, "process_unscheduled is off"),
        ("PN", _exp(type_="CALIBRATION"), True, {}, False, "exposure type CALIBRATION, not SCIENCE"),
        ("PN", _exp(mode="Diagnostic"), True, {}, False, "not a science mode"),
        ("PN", _exp(mode="Offset"), True, {}, False, "not a science mode"),
        ("PN", _exp(mode="UNDEFINED"), True, {}, False, "not a science mode"),
        ("PN", _exp(mode="CalFullWindow"), True, {}, False, "not a science mode"),
        ("PN", _exp(mode="NoiseMode"), True, {}, False, "not a science mode"),
        ("PN", _exp(mode="FastTiming", ccd_modes={4: "Timing"}), True, {}, False, "timing/burst"),
        ("PN", _exp(mode="FastBurst", ccd_modes={4: "Burst"}), True, {}, False, "timing/burst"),
        ("PN", _exp(mode="Image"), True, {}, False, "not a PN imaging mode"),
        ("PN", _exp(mode="PrimeLargeWindow"), True, {}, True, "PrimeLargeWindow"),
        ("PN", _exp(mode="PrimeSmallWindow", ccd_modes={4: "Imaging"}), True, {}, True, "imaging CCDs 4"),
        ("PN", _exp(mode="PrimeFullWindowExtended"), True, {}, True, "PrimeFullWindowExtended"),
        ("PN", _exp(ccd_modes={1: "OffsetData"}), True, {}, False, "no CCD in Imaging data mode"),
        ("PN", _exp(filt="CalClosed"), True, {}, False, "filter CalClosed"),
        ("PN", _exp(filt="closed"), True, {}, False, "filter closed"),
        ("PN", _exp(filt="BLOCKED"), True, {}, False, "filter BLOCKED"),
        ("PN", _exp(filt="Unknown"), True, {}, False, "filter Unknown"),
        ("PN", _exp(filt="UNDEFINED"), True, {}, False, "filter UNDEFINED"),
        ("PN", _exp(filt="Medium"), True, {}, True, "Medium"),
        ("M1", _exp("S001", ccd_modes=MOS_ALL), True, {}, True, "imaging CCDs 1,2,3,4,5,6,7"),
        ("M1", _exp("S001", mode="PrimePartialW3", ccd_modes=MOS_ALL), True, {}, True, "PrimePartialW3"),
        ("M1", _exp("S001", mode="PrimePartialRFS", ccd_modes=MOS_ALL), True, {}, True, "PrimePartialRFS"),
        (
            "M2",
            _exp("S002", mode="FastUncompressed", ccd_modes={1: "Timing", **{c: "Imaging" for c in range(2, 8)}}),
            True,
            {},
            True,
            "imaging CCDs 2,3,4,5,6,7",
        ),
        ("M2", _exp("S002", mode="FastCompressed", ccd_modes={1: "Timing", 2: "Imaging"}), True, {}, True, "imaging CCDs 2"),
        ("M2", _exp("S002", mode="FastUncompressed", ccd_modes={1: "Timing"}), True, {}, False, "no CCD in Imaging"),
        ("M1", _exp("S001", mode="Image", ccd_modes=MOS_ALL), True, {}, False, "not a MOS imaging mode"),
        ("M1", _exp("S001", filt="CalClosed", ccd_modes=MOS_ALL), True, {}, False, "filter CalClosed"),
        ("R1", _exp("S004", mode="HighEventRateWithSES", filt="UNDEFINED", ccd_modes=RGS_SPEC), True, {}, True, "spectroscopy CCDs 1,2,3,4,5,6,8,9"),
        ("R2", _exp("S005", mode="Spectroscopy", filt="UNDEFINED", ccd_modes={1: "Spectroscopy"}), True, {}, True, "Spectroscopy"),
        ("R1", _exp("S900", mode="Diagnostic3x3", filt="UNDEFINED", ccd_modes={1: "Diagnostic"}), True, {}, False, "not a science mode"),
        ("R1", _exp("S004", mode="HighEventRateWithSES", filt="UNDEFINED", ccd_modes={}), True, {}, False, "no CCD in Spectroscopy"),
        ("R1", _exp("S004", mode="HighEventRateWithSES", filt="UNDEFINED", ccd_modes=RGS_SPEC), True,
         {"process_unscheduled": False}, True, "spectroscopy"),
    ],
)
def test_rule(inst: str, exp: ExposureInfo, active: bool, kwargs: dict, kept: bool, reason: str) -> None:
    d = _one(inst, exp, active, **kwargs)
    assert (d.inst, d.exp_id, d.kept) == (inst, exp.exp_id, kept)
    assert reason in d.reason


def test_units_carry_mode_filter_ccds() -> None:
    s = _summary(
        ("M1", True, [_exp("S001", ccd_modes={1: "Imaging", 2: "Imaging", 7: "Imaging"})]),
        ("R1", True, [_exp("S004", mode="HighEventRateWithSES", filt="UNDEFINED", ccd_modes=RGS_SPEC)]),
        ("PN", True, [_exp("S003", mode="PrimeLargeWindow", ccd_modes={4: "Imaging", 1: "Imaging", 5: "OffsetData"})]),
    )
    units = select_units(s)
    assert [(u.inst, u.exp_id, u.mode, u.filter, u.ccds) for u in units] == [
        ("M1", "S001", "PrimeFullWindow", "Thin1", (1, 2, 7)),
        ("R1", "S004", "HighEventRateWithSES", "UNDEFINED", ()),
        ("PN", "S003", "PrimeLargeWindow", "Thin1", (1, 4)),
    ]


def test_decision_unpacks_as_a_tuple() -> None:
    inst, exp_id, kept, reason = _one("PN", _exp())
    assert (inst, exp_id, kept) == ("PN", "S003", True) and reason


def test_instrument_names() -> None:
    s = _summary(("M1", True, [_exp("S001", ccd_modes=MOS_ALL)]), ("PN", True, [_exp()]))
    assert [u.inst for u in select_units(s, instruments=["mos1"])] == ["M1"]
    assert [u.inst for u in select_units(s, instruments="pn")] == ["PN"]
    assert select_units(s, instruments=()) == []
    for bad in ("OM", ("PN", "EPIC"), ["m3"]):
        with pytest.raises(ConfigError, match="instruments: .* is not one of PN, M1, M2, R1, R2"):
            select_units(s, instruments=bad)


def test_empty_summary() -> None:
    assert select_units(_summary()) == [] and explain_selection(_summary()) == []
