"""DAXA's records read from manifests and step notes (daxa_xmm/daxa/records.py), and what a
step function's unit reads (daxa_xmm/daxa/step_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daxa_xmm.daxa.records import (
    MISSION,
    MissingStepError,
    check_prerequisite,
    daxa_key,
    daxa_step,
    read_records,
    save_step_info,
)
from daxa_xmm.daxa.step_inputs import unit_inputs
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.manifest import Manifest, StepRecord, save_manifest

OBS = "0201903501"
PN = f"{OBS}PNS003"


def _rec(unit: str, step: str, status: str = "ok", **kw) -> StepRecord:
    return StepRecord(unit=unit, step=step, status=status, fingerprint=f"fp-{unit}-{step}",
                      ended="2026-12-01T00:00:00Z", **kw)


def _layout(tmp_path: Path, *records: StepRecord) -> ArchiveLayout:
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    manifest = Manifest(obsid=OBS)
    for r in records:
        manifest.put(r)
    layout.obs_dir(OBS).mkdir(parents=True)
    save_manifest(manifest, layout.manifest(OBS))
    return layout


def test_call_steps_and_units_map_to_daxas_steps_and_keys() -> None:
    assert daxa_step("epchain_oot") == "epchain"
    assert daxa_step("merge_subexposures_2") == "merge_subexposures"
    assert daxa_step("expmap") == "generate_images_expmaps"
    assert daxa_key(f"{OBS}PN-clean") == f"{OBS}PN"
    assert daxa_key(PN) == PN


def test_a_key_of_several_calls_succeeds_only_when_all_did(tmp_path: Path) -> None:
    log = tmp_path / "oot.stdout.log"
    log.write_text("epchain: executing\n")
    err = {"task": "epchain", "level": "error", "name": "noCounts", "message": "no events"}
    warn = {"task": "epchain", "level": "warning", "name": "lowExp", "message": "short"}
    layout = _layout(tmp_path,
                     _rec(OBS, "cif_build"),
                     _rec(PN, "epchain_oot", log_files=[log], warnings=[warn]),
                     _rec(PN, "epchain", "failed", errors=[err]),
                     _rec(f"{OBS}M1S001", "espfilt", "skipped"))  # never attempted: no record
    recs = read_records(layout, [OBS], logs=True)
    assert recs.success[MISSION] == {"cif_build": {OBS: True}, "epchain": {PN: False}}
    assert recs.errors[MISSION]["epchain"][PN] == ["** epchain: error (noCounts), no events"]
    assert recs.warnings[MISSION]["epchain"][PN] == ["** epchain: warning (lowExp), short"]
    assert "epchain: executing" in recs.logs[MISSION]["epchain"][PN]
    assert recs.final[MISSION] == {}  # merge never ran


def test_plan_errors_extra_info_and_final_success_come_from_the_step_notes(tmp_path: Path) -> None:
    layout = _layout(tmp_path, _rec(f"{OBS}PN-clean", "merge_subexposures"))
    save_step_info(layout, OBS, "merge_subexposures", {f"{OBS}PN": {"clean": {"dest": "x"}}}, {f"{OBS}M1": "no summary"})
    recs = read_records(layout, [OBS])
    assert recs.success[MISSION]["merge_subexposures"] == {f"{OBS}PN": True, f"{OBS}M1": False}
    assert recs.errors[MISSION]["merge_subexposures"][f"{OBS}M1"] == ["no summary"]
    assert recs.extra_info[MISSION]["merge_subexposures"][f"{OBS}PN"] == {"clean": {"dest": "x"}}
    assert recs.final[MISSION] == {OBS: True}


def test_a_corrupt_step_note_is_kept_aside_and_spoils_nothing_else(tmp_path: Path) -> None:
    layout = _layout(tmp_path, _rec(OBS, "cif_build"))
    (layout.obs_dir(OBS) / "daxa_steps.json").write_text("{not json")
    recs = read_records(layout, [OBS])
    assert recs.success[MISSION] == {"cif_build": {OBS: True}}
    assert list(layout.obs_dir(OBS).glob("daxa_steps.json.corrupt-*"))


def test_a_step_before_its_prerequisite_names_the_missing_step(tmp_path: Path) -> None:
    layout = _layout(tmp_path, _rec(OBS, "cif_build"))
    check_prerequisite(layout, [OBS], "odf_ingest")
    with pytest.raises(MissingStepError, match="epchain needs odf_ingest first"):
        check_prerequisite(layout, [OBS], "epchain")
    with pytest.raises(MissingStepError, match="espfilt needs epchain or emchain"):
        check_prerequisite(layout, [OBS], "espfilt")


def test_a_units_inputs_are_its_prerequisite_and_the_tokens_before_it(tmp_path: Path) -> None:
    unit = Unit(obsid=OBS, inst="PN", exp_id="S003", ccds=list(range(1, 13)))
    chain = ["epchain_oot", "epchain", "espfilt", "cleaned_evt_lists"]
    manifest = Manifest(obsid=OBS)
    for r in (_rec(OBS, "cif_build"), _rec(OBS, "odf_ingest"), _rec(PN, "epchain_oot"), _rec(PN, "epchain")):
        manifest.put(r)
    ready = unit_inputs(manifest, unit, "espfilt", chain)
    assert ready.ready and ready.tokens == tuple(f"fp-{u}-{s}@2026-12-01T00:00:00+00:00" for u, s in
                                                 [(OBS, "cif_build"), (OBS, "odf_ingest"), (PN, "epchain_oot"), (PN, "epchain")])
    manifest.put(_rec(PN, "epchain", "failed"))
    stopped = unit_inputs(manifest, unit, "espfilt", chain)
    assert not stopped.ready and "epchain did not succeed" in stopped.why
    assert not unit_inputs(manifest, unit, "cleaned_evt_lists", chain).ready  # espfilt never ran
