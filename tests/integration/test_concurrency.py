"""The SAS process cap: never more than ``num_cores`` SAS calls at once, in one flow run and
across two flow runs started at once in two processes on the same machine.

Overlap is computed from the stand-in's call log (each call's logged [start, end] lies
inside the time its slot was held), not from timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, cli_env, config, max_overlap, start_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: Every processing task takes 0.3 s longer than its work: long enough for calls to meet.
_DURATIONS = {t: 0.3 for t in ("cifbuild", "odfingest", "emchain", "emanom", "espfilt", "evselect", "merge", "eexpmap")}


def test_max_overlap_counts_what_it_should() -> None:
    calls = [{"start": 0, "end": 2}, {"start": 1, "end": 3}, {"start": 2, "end": 4}, {"start": 2.5, "end": 5}]
    assert max_overlap(calls) == 3
    assert max_overlap([{"start": 0, "end": 1}, {"start": 1, "end": 2}]) == 1  # touching is not overlapping


def test_one_run_never_exceeds_num_cores_sas_processes(tmp_path: Path, standin, monkeypatch) -> None:
    from daxa_xmm.pipeline import step_run

    obsids = write_archive(tmp_path / "archive", 3, mix="standard")
    standin.durations(_DURATIONS)
    waited_at: dict[tuple[str, str], float] = {}  # (unit, step): the priority its slot was asked at

    def run_sas(call, **kw):
        waited_at[(call.unit, call.step)] = kw["slot"].priority
        return real_run_sas(call, **kw)

    real_run_sas = step_run.run_sas
    monkeypatch.setattr(step_run, "run_sas", run_sas)
    result = run_archive(config(tmp_path, instruments=["M1"], num_cores=2, obs_concurrency=3))
    assert [o["status"] for o in result["observations"]] == ["ok"] * 3, result
    calls = standin.calls()
    assert len(calls) == 3 * 8  # cifbuild, odfingest, emchain, emanom, espfilt, evselect, image, expmap
    # never more than the cap; that the cap is reached is tests/unit/test_slots.py's (here it
    # would depend on how fast a loaded machine starts the calls)
    assert max_overlap(calls) <= 2
    # a waiting call's place in the queue: the work behind it, less at every later call of its
    # observation (here one chain), the same for the same step of every observation
    keys = [tuple(k.split("/")) for k in call_keys(calls, tmp_path / "processed")]
    by_obs = [[waited_at[(unit, step)] for unit, step in keys if unit.startswith(o)] for o in obsids]
    for order in by_obs:
        assert len(order) == 8 and order == sorted(order, reverse=True) and len(set(order)) == 8 and order[-1] > 0, order
    assert by_obs[0] == by_obs[1] == by_obs[2]


def test_two_runs_in_two_processes_share_the_cap(tmp_path: Path, standin) -> None:
    write_archive(tmp_path / "one", 2, mix="standard", start_obsid=100000001)
    write_archive(tmp_path / "two", 2, mix="standard", start_obsid=200000001)
    standin.durations(_DURATIONS)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"images": {"bands": [["0.5 keV", "2.0 keV"]]}, "retry_delay": "0 s"}))
    env = cli_env()  # the standin fixture's PATH, SAS_*, DAXA_STANDIN_* and DAXA_XMM_SLOTS_DIR
    procs = [
        start_cli([str(tmp_path / name), "--out", str(tmp_path / f"out-{name}"), "--num-cores", "2", "--no-progress",
                   "--instruments", "M1", "--config", str(settings)], cwd=tmp_path, env=env)
        for name in ("one", "two")
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out + err
    calls = standin.calls()
    runs = [[c for c in calls if f"/out-{name}/" in c["cwd"]] for name in ("one", "two")]
    assert len(runs[0]) == len(runs[1]) == 2 * 8
    # never more than the cap at once across both processes; whether the two runs overlapped
    # depends on the machine's load, and the suite asserts nothing on timing (the per-host
    # slot files are what a second process shares: tests/unit/test_runner.py checks FileSlots
    # across processes deterministically)
    assert max_overlap(calls) <= 2
