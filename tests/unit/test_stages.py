"""The pipeline's table (daxa_xmm/pipeline/stages.py): what runs for which unit, in which order, and
what a stage reads of the calls before it."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import EPIC
from daxa_xmm.odf.summary import read_odf_summary
from daxa_xmm.pipeline.observation_plan import observation_plan
from daxa_xmm.pipeline.plan import EXAMPLE_SUMMARY
from daxa_xmm.pipeline.stages import PIPELINE, STAGE_NAMES, longest_first, path_s, planned_work, stages_for, unit_input
from daxa_xmm.pipeline.walk import observation_input, select_observation_units
from daxa_xmm.sas.version import parse_sas_version
from daxa_xmm.steps.spec import StageInput
from tests.unit.test_emanom import LOG

OBSID = "0123456789"


@pytest.fixture
def si(tmp_path: Path) -> StageInput:
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    layout.obs_dir(OBSID).mkdir(parents=True)
    shutil.copy(EXAMPLE_SUMMARY, layout.summary(OBSID, "0001"))
    record = read_odf_summary(layout.summary(OBSID, "0001"), obs_id=OBSID).observation
    cfg = ProcessingConfig(archive=tmp_path / "raw", out=tmp_path / "out", clean={"filt_mos_anom_state": True})
    return observation_input(layout, record, cfg, parse_sas_version("22.1.0"))


def test_the_steps_users_select_are_the_tables() -> None:
    assert STAGE_NAMES == tuple(s.name for s in PIPELINE)
    assert len(set(STAGE_NAMES)) == len(STAGE_NAMES)


def test_each_instrument_gets_its_chain_in_table_order(si: StageInput) -> None:
    units = {u.inst: u for u in select_observation_units(si)}
    chain = {inst: [s.name for s in stages_for("unit", unit_input(si, u))] for inst, u in units.items()}
    assert chain["PN"] == ["epchain", "espfilt", "cleaned_evt_lists"]
    assert chain["M1"] == ["emchain", "emanom", "espfilt", "cleaned_evt_lists"]
    assert chain["R1"] == ["rgsproc"]
    # before SAS 19, emanom does not exist: MOS goes straight to espfilt
    old = replace(si, sas_version=parse_sas_version("18.0.0"))
    assert "emanom" not in [j.stage.name for j in observation_plan(old, [units["M1"]]).jobs if j.scope == "unit"]
    assert [s.name for s in stages_for("instrument", replace(si, inst="R1"))] == []


def test_the_cleaning_reads_emanoms_verdict_when_run_not_when_planned(si: StageInput) -> None:
    mos = next(u for u in select_observation_units(si) if u.inst == "M1" and u.exp_id == "S001")
    unit = unit_input(si, mos)
    (clean,) = [s for s in stages_for("unit", unit) if s.name == "cleaned_evt_lists"]
    # planned: emanom has not run, its log is not read and every CCD is kept
    assert "CCDNR" not in " ".join(planned_work("unit", unit)[-1].argv)
    with pytest.raises(Exception, match="anom"):
        clean.build(unit)  # run: the verdict must be there
    log = si.layout.emanom_log(OBSID, "M1", "S001")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(LOG.replace("MOS1 exposure S001", f"MOS1 exposure {mos.exp_id}"))
    (call,) = clean.build(unit)
    assert "(CCDNR in " in call.extra["expression"] and call.extra["accepted_ccds"] != list(mos.ccds)


def test_no_standin_variable_reaches_a_sas_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from daxa_xmm.pipeline.step_run import observation_context

    monkeypatch.setenv("DAXA_STANDIN_FAULTS", str(tmp_path / "faults.json"))
    cfg = ProcessingConfig(archive=tmp_path / "raw", out=tmp_path / "out")
    ctx = observation_context(OBSID, cfg, ArchiveLayout(cfg.archive, cfg.out_root), "22.1.0")
    assert "PATH" in ctx.extra_env and not [k for k in ctx.extra_env if k.startswith("DAXA_STANDIN")]


def test_the_work_behind_a_stage_shrinks_along_every_path_and_heads_come_first(si: StageInput) -> None:
    # what orders calls waiting for a SAS slot: strictly less behind each later stage
    units = {u.inst: unit_input(si, u) for u in select_observation_units(si)}
    head = [path_s("observation", si, k) for k in range(len(stages_for("observation", si)))]
    assert head == sorted(head, reverse=True) and len(set(head)) == len(head)
    for inst, ui in units.items():
        chain = [path_s("unit", ui, k) for k in range(len(stages_for("unit", ui)))]
        assert chain == sorted(chain, reverse=True) and len(set(chain)) == len(chain), inst
        assert head[-1] > chain[0]  # odfingest before any chain: every chain waits for it
        after, band = path_s("instrument", ui), path_s("band", ui)
        assert chain[-1] > after > band > 0 if inst in EPIC else after == band == 0, inst  # RGS: no merge, no image
    assert path_s("unit", units["PN"]) > path_s("unit", units["M1"])  # the long PN chain first
    # the head counts the longest chain of any instrument, whatever this observation has
    assert head[-1] == stages_for("observation", si)[-1].typical_s + path_s("unit", units["PN"])


def test_the_longest_chains_start_first(si: StageInput) -> None:
    # a free SAS slot goes to whoever asks first: the PN chain (8 s of epchain) must ask first
    units = select_observation_units(si)
    order = longest_first(si, units)
    assert sorted(order, key=str) == sorted(units, key=str)  # the same units, reordered
    paths = [path_s("unit", unit_input(si, u)) for u in order]
    assert paths == sorted(paths, reverse=True)
    assert order[0].inst == "PN" and units[0].inst != "PN", [u.inst for u in units]  # the summary lists MOS first
    mos = [u for u in order if u.inst in ("M1", "M2")]
    assert mos == [u for u in units if u.inst in ("M1", "M2")]  # ties keep their order


def _every_call(si: StageInput) -> list:
    """Every call the example observation's plan makes, with the line that built it."""
    from daxa_xmm.pipeline.stages import band_inputs
    from daxa_xmm.sas.calls import SasCall

    units = select_observation_units(si)
    inputs = [("observation", si), *(("unit", unit_input(si, u)) for u in units)]
    for inst in {u.inst for u in units}:
        its = replace(si, inst=inst, units=tuple(u for u in units if u.inst == inst))
        inputs += [("instrument", its), *(("band", b) for b in band_inputs(its))]
    return [(stage, w) for scope, inp in inputs for stage in stages_for(scope, replace(inp, planning=True))
            for w in stage.build(replace(inp, planning=True)) if isinstance(w, SasCall)]


def test_each_call_is_named_and_run_as_its_line_declares(si: StageInput) -> None:
    """The maps from a call to its step (``--force``, DAXA's records) and the stand-in's tasks
    are derived from what each line declares: a call it did not declare would be lost."""
    from daxa_xmm.pipeline.stages import DAXA_STEPS, daxa_function, pipeline_step
    from daxa_xmm.standin.tasks import TASKS

    calls = _every_call(si)
    assert {stage.name for stage, _ in calls} == set(STAGE_NAMES)  # the example has every instrument
    for stage, call in calls:
        assert pipeline_step(call.step) == stage.name, call.step
        if call.placed_from is None:  # a placement (one sub-exposure's merge) runs no SAS task
            assert call.argv[0] in stage.sas_tasks and call.argv[0] in TASKS, call.argv[0]
        assert daxa_function(call.step) in {f.name for f in stage.daxa}, call.step
    named = {daxa_function(call.step) for _, call in calls}
    assert named == set(DAXA_STEPS)  # every DAXA function has calls, each under its own name
    assert daxa_function("rgs_angles") == "rgs_angles" and pipeline_step("rgs_angles") == "rgsproc"


def test_the_settings_sections_and_daxa_prerequisites_are_the_tables() -> None:
    from daxa_xmm.pipeline.stages import DAXA_PREREQUISITES, DAXA_STEPS, SECTIONS

    sections = {f: ProcessingConfig.model_fields[f].annotation for f in ProcessingConfig.model_fields
                if f in {s.name for s in SECTIONS}}
    assert sections == {s.name: s.model for s in SECTIONS} and len(sections) == 3
    for step, needs in DAXA_PREREQUISITES.items():  # each needs an earlier step
        assert all(DAXA_STEPS.index(n) < DAXA_STEPS.index(step) for n in needs), step
