"""DAXA's records read from manifests and step notes (daxa_xmm/daxa/records.py), and what a
step function's unit reads (daxa_xmm/daxa/step_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daxa_xmm.daxa.extra_info import en_key
from daxa_xmm.daxa.records import (
    MISSION,
    MissingStepError,
    check_prerequisite,
    daxa_key,
    read_records,
    save_step_info,
)
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.manifest import Manifest, StepRecord, save_manifest
from daxa_xmm.pipeline.stages import daxa_function

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
    assert daxa_function("epchain_oot") == "epchain"
    assert daxa_function("merge_subexposures_2") == "merge_subexposures"
    assert daxa_function("expmap") == "generate_images_expmaps"
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
    # worded and shaped as DAXA's parse_stderr gives them
    assert recs.errors[MISSION]["epchain"][PN] == ["noCounts raised by epchain - no events"]
    assert recs.warnings[MISSION]["epchain"][PN] == [{"originator": "epchain", "name": "lowExp", "message": "short"}]
    assert "epchain: executing" in recs.logs[MISSION]["epchain"][PN]
    assert recs.final[MISSION] == {}  # merge never ran


def test_plan_errors_extra_info_and_final_success_come_from_the_step_notes(tmp_path: Path) -> None:
    layout = _layout(tmp_path, _rec(f"{OBS}PN-clean", "merge_subexposures"))
    save_step_info(layout, OBS, "merge_subexposures", {f"{OBS}PN": {"clean": {"dest": "x"}}}, {f"{OBS}M1": "no summary"})
    recs = read_records(layout, [OBS])
    assert recs.success[MISSION]["merge_subexposures"] == {f"{OBS}PN": True, f"{OBS}M1": False}
    assert recs.errors[MISSION]["merge_subexposures"][f"{OBS}M1"] == ["no summary"]
    merged = recs.extra_info[MISSION]["merge_subexposures"][f"{OBS}PN"]
    assert merged["clean"] == {"dest": "x"}  # the step function's note, beside DAXA's keys
    assert merged["final_evt"] == str(layout.merged_events(OBS, "PN", "clean"))
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


def test_every_step_that_ran_has_a_dict_in_every_table_and_failures_keep_their_stderr(tmp_path: Path) -> None:
    err_log = tmp_path / "espfilt.stderr.log"
    err_log.write_text("** espfilt: error (noCounts), no counts\n")
    layout = _layout(tmp_path, _rec(OBS, "cif_build"), _rec(PN, "espfilt", "failed", log_files=[err_log]))
    recs = read_records(layout, [OBS], logs=True)
    for table in (recs.errors, recs.warnings, recs.raw_errors, recs.logs, recs.extra_info):
        assert set(table[MISSION]) == {"cif_build", "espfilt"}
    assert recs.errors[MISSION]["cif_build"] == {} and recs.raw_errors[MISSION]["cif_build"] == {}
    assert recs.raw_errors[MISSION]["espfilt"] == {PN: err_log.read_text()}


def test_extra_info_has_daxas_keys_for_what_the_command_line_made(tmp_path: Path) -> None:
    # no step notes (daxa_steps.json): only the manifest the archive flow writes
    m1 = f"{OBS}M1S001"
    expr = "#XMMEA_EP && (PATTERN <= 4) && (PI in [500:2000]) && GTI(x.fits,TIME)"
    layout = _layout(tmp_path,
                     _rec(OBS, "cif_build", facts={"observation_date": "2004-06-17", "analysis_date": "2025-01-02"}),
                     _rec(PN, "epchain_oot"), _rec(PN, "epchain"), _rec(PN, "espfilt"), _rec(m1, "espfilt", "failed"),
                     _rec(PN, "cleaned_evt_lists", facts={"expression": expr}), _rec(m1, "cleaned_evt_lists", "upstream_failed"),
                     _rec(f"{OBS}PN-0.50-2.00keV", "image", facts={"band_ev": [500.0, 2000.0]}))
    extra = read_records(layout, [OBS]).extra_info[MISSION]
    assert extra["cif_build"][OBS] == {"obs_date": "2004-06-17", "analysis_date": "2025-01-02"}
    assert extra["epchain"][PN] == {"evt_list": str(layout.pn_events(OBS, "S003")),
                                    "oot_evt_list": str(layout.pn_events(OBS, "S003", oot=True))}
    assert set(extra["espfilt"][PN]) == {"all_good_evts", "all_good_oot_evts", "gti_path", "hist_path"}
    assert set(extra["espfilt"][m1]) == {"all_good_evts", "gti_path", "hist_path"}  # ran, failed: DAXA noted it too
    assert extra["espfilt"][m1]["gti_path"] == str(layout.espfilt_gti(OBS, "M1", "S001"))
    assert extra["cleaned_evt_lists"][PN] == {"evt_clean_path": str(layout.clean_events(OBS, "PN", "S003")), "en_key": "_0.5_2.0keV",
                                              "oot_evt_clean_path": str(layout.clean_events(OBS, "PN", "S003", oot=True))}
    assert m1 not in extra["cleaned_evt_lists"]  # never ran: its prerequisite failed
    assert extra["generate_images_expmaps"][f"{OBS}PN"]["0.50-2.00keV"]["image"] == str(layout.image(OBS, "PN", 500.0, 2000.0))


@pytest.mark.parametrize(("expression", "key"), [
    ("(PI in [200:12000]) && #XMMEA_EM", "_0.2_12.0keV"),
    ("#XMMEA_EM && (PATTERN <= 12)", ""),
    (None, ""),
])
def test_en_key_is_daxas_energy_label_of_the_cleaning(expression: str | None, key: str) -> None:
    assert en_key(expression) == key


def test_a_data_quality_outcome_is_no_success_and_reads_as_no_sas_error(tmp_path: Path) -> None:
    # issue 33.3: DAXA words a SAS error "<name> raised by <task> - <message>"; a data-quality
    # outcome says what the check found, and what it would feed is left out (not failed)
    said = "data quality, not a SAS error: pnS003-gti.fits: no good time left after flare filtering"
    layout = _layout(tmp_path,
                     _rec(OBS, "cif_build"),
                     _rec(PN, "espfilt", "data_quality", message=f"espfilt [{PN}]: {said}", quality=["flare_gti"]),
                     _rec(PN, "cleaned_evt_lists", "skipped", message=f"not run: espfilt [{PN}]: {said}"),  # the archive flow
                     _rec(PN, "cleaned_evt_lists_oot", "upstream_failed", message=f"not run: {PN}: espfilt did not succeed"),
                     _rec(f"{OBS}M1S001", "cleaned_evt_lists", "upstream_failed", message="not run: espfilt did not succeed"))
    recs = read_records(layout, [OBS])
    assert recs.success[MISSION]["espfilt"] == {PN: False}
    assert recs.errors[MISSION]["espfilt"][PN] == [said]
    # left out, as DAXA leaves out a unit whose prerequisite did not succeed; another unit's failure stays
    assert recs.success[MISSION]["cleaned_evt_lists"] == {f"{OBS}M1S001": False}
