"""The observation's plan (daxa_xmm/pipeline/observation_plan.py): its jobs, what each reads,
and the inputs of DAXA's step functions read from it (daxa_xmm/daxa/step_inputs.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.daxa.step_inputs import step_inputs
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.summary import read_odf_summary
from daxa_xmm.pipeline.manifest import Manifest, StepRecord
from daxa_xmm.pipeline.observation_plan import ObservationPlan, observation_plan
from daxa_xmm.pipeline.plan import EXAMPLE_SUMMARY
from daxa_xmm.pipeline.walk import observation_input, select_observation_units
from daxa_xmm.sas.version import parse_sas_version
from daxa_xmm.steps.spec import StageInput

OBS = "0123456789"


@pytest.fixture
def si(tmp_path: Path) -> StageInput:
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    layout.obs_dir(OBS).mkdir(parents=True)
    shutil.copy(EXAMPLE_SUMMARY, layout.summary(OBS, "0001"))
    record = read_odf_summary(layout.summary(OBS, "0001"), obs_id=OBS).observation
    cfg = ProcessingConfig(archive=tmp_path / "raw", out=tmp_path / "out")
    return observation_input(layout, record, cfg, parse_sas_version("22.1.0"), planning=True)


def _names(plan: ObservationPlan, ks: list[int]) -> list[str]:
    return [f"{plan.jobs[k].stage.name}:{plan.jobs[k].input.unit.label if plan.jobs[k].input.unit else plan.jobs[k].input.inst}"
            for k in ks]


def test_the_observations_stages_come_first_in_the_same_places(si: StageInput) -> None:
    head = observation_plan(si)
    whole = observation_plan(si, select_observation_units(si))
    assert [j.stage.name for j in head.jobs] == ["cif_build", "odf_ingest"]
    assert whole.jobs[: len(head.jobs)] == head.jobs
    assert head.jobs[1].reads == (0,) and head.jobs[0].reads == ()


def test_each_job_reads_its_chain_and_an_instrument_reads_each_of_its_units(si: StageInput) -> None:
    units = select_observation_units(si)
    plan = observation_plan(si, units)
    assert all(r < k for k, job in enumerate(plan.jobs) for r in job.reads)  # each after what it reads
    pn = [k for k, j in enumerate(plan.jobs) if j.input.unit is not None and j.input.unit.label == f"{OBS}PNS003"]
    assert _names(plan, pn) == [f"{s}:{OBS}PNS003" for s in ("epchain", "espfilt", "cleaned_evt_lists")]
    assert plan.jobs[pn[0]].reads == (1,) and plan.jobs[pn[1]].reads == (pn[0],)
    (merge,) = [k for k, j in enumerate(plan.jobs) if j.scope == "instrument" and j.input.inst == "PN"]
    pn_units = [u for u in units if u.inst == "PN"]
    assert plan.jobs[merge].over_units and plan.jobs[merge].input.units == tuple(pn_units)
    # the merge reads the end of every PN unit's chain, and nothing of MOS's
    assert {plan.jobs[r].input.unit for r in plan.jobs[merge].reads} == set(pn_units)
    assert all(plan.jobs[r].stage.name == "cleaned_evt_lists" for r in plan.jobs[merge].reads)
    bands = [k for k, j in enumerate(plan.jobs) if j.scope == "band" and j.input.inst == "PN"]
    assert len(bands) == 2 and all(plan.jobs[b].reads == (merge,) and not plan.jobs[b].over_units for b in bands)
    # what a PN image reads, all the way up: the head, PN's chains and its merge; no MOS, no RGS
    up = {plan.jobs[k].input.the_inst if plan.jobs[k].scope != "observation" else "obs" for k in plan.upstream(bands[0])}
    assert up == {"obs", "PN"}
    assert plan.readers(merge) == bands
    # no instrument stage for RGS: its chains end the plan
    assert not [j for j in plan.jobs if j.scope in ("instrument", "band") and j.input.inst in ("R1", "R2")]


def _rec(unit: str, step: str, status: str = "ok") -> StepRecord:
    return StepRecord(unit=unit, step=step, status=status, fingerprint=f"fp-{unit}-{step}", ended="2026-12-01T00:00:00Z")


def _token(unit: str, step: str) -> str:
    return f"fp-{unit}-{step}@2026-12-01T00:00:00+00:00"


def test_a_daxa_units_inputs_are_its_prerequisite_and_the_tokens_of_what_its_job_reads(si: StageInput) -> None:
    plan = observation_plan(si, select_observation_units(si))
    pn = f"{OBS}PNS003"
    manifest = Manifest(obsid=OBS)
    for r in (_rec(OBS, "cif_build"), _rec(OBS, "odf_ingest"), _rec(pn, "epchain_oot"), _rec(pn, "epchain")):
        manifest.put(r)
    ready = step_inputs(plan, manifest, si.layout, "espfilt", pn)
    assert ready.ready and sorted(ready.tokens) == sorted(
        _token(u, s) for u, s in [(OBS, "cif_build"), (OBS, "odf_ingest"), (pn, "epchain_oot"), (pn, "epchain")])
    # the epchain run of a DAXA step reads its out-of-time run before it, in the same job
    epchain = step_inputs(plan, manifest, si.layout, "epchain", pn)
    assert epchain.ready and _token(pn, "epchain_oot") not in epchain.tokens
    assert step_inputs(plan, manifest, si.layout, "odf_ingest", OBS).tokens == (_token(OBS, "cif_build"),)
    manifest.put(_rec(pn, "epchain", "failed"))
    stopped = step_inputs(plan, manifest, si.layout, "espfilt", pn)
    assert not stopped.ready and "epchain did not succeed" in stopped.why
    assert not step_inputs(plan, manifest, si.layout, "cleaned_evt_lists", pn).ready  # espfilt never ran


def test_a_merges_inputs_are_the_cleaned_units_and_its_images_the_merged_list(si: StageInput) -> None:
    units = select_observation_units(si)
    plan = observation_plan(si, units)
    m1 = [u.label for u in units if u.inst == "M1"]
    manifest = Manifest(obsid=OBS)
    merge = step_inputs(plan, manifest, si.layout, "merge_subexposures", f"{OBS}M1-clean", "M1")
    assert not merge.ready and "no cleaned event list" in merge.why
    for r in (_rec(OBS, "cif_build"), _rec(OBS, "odf_ingest"), *(_rec(m1[0], s) for s in ("emchain", "cleaned_evt_lists"))):
        manifest.put(r)
    manifest.put(_rec(f"{OBS}PNS003", "cleaned_evt_lists"))  # another instrument's: not read
    merge = step_inputs(plan, manifest, si.layout, "merge_subexposures", f"{OBS}M1-clean", "M1")
    assert merge.ready and set(merge.tokens) == {_token(OBS, "cif_build"), _token(OBS, "odf_ingest"),
                                                  _token(m1[0], "emchain"), _token(m1[0], "cleaned_evt_lists")}
    images = step_inputs(plan, manifest, si.layout, "generate_images_expmaps", f"{OBS}M1-0.30-9.00keV", "M1")
    assert not images.ready and "no merged event list" in images.why  # DAXA's own band: found by instrument
    merged = si.layout.merged_events(OBS, "M1", "clean")
    merged.parent.mkdir(parents=True, exist_ok=True)
    merged.write_bytes(b"")
    manifest.put(_rec(f"{OBS}M1-clean", "merge_subexposures"))
    images = step_inputs(plan, manifest, si.layout, "generate_images_expmaps", f"{OBS}M1-0.30-9.00keV", "M1")
    assert images.ready and set(images.tokens) == set(merge.tokens) | {_token(f"{OBS}M1-clean", "merge_subexposures")}
