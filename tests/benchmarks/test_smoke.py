"""Each benchmark script runs on a tiny size and writes its result fields; no time is asserted.

The benchmarks themselves never run in the test suite (minutes each, and timings on a shared
machine are not test material); this only keeps the scripts from rotting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PREFECT_API_VAR
from tests.integration.flowkit import harness_api_url

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _run(module: str, *args: str, tmp: Path, api: str | None = None) -> None:
    """Run the benchmark script in a clean environment; ``api``: a Prefect server to use
    instead of the script's temporary one (each costs 10-20 s to start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DAXA_", "SAS_"))}
    if api:
        env[PREFECT_API_VAR] = api
    proc = subprocess.run(
        [sys.executable, "-m", f"tests.benchmarks.{module}", "--out", str(tmp / "res"), "--work", str(tmp / "work"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _machine_ok(result: dict) -> None:
    assert result["machine"]["nproc"] >= 1 and result["machine"]["date"] and result["command"].startswith("python -m")


@pytest.mark.usefixtures("prefect_harness")
def test_makespan_runs_tiny(tmp_path: Path) -> None:
    _run("makespan", "--n", "2", "--scale", "0.02", "--skip", "flow_straggler", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "makespan.json").read_text())
    _machine_ok(result)
    flow = result["flow"]
    assert flow["counts"] == {"ok": 2}
    assert flow["calls"] > 10 and flow["lower_bound"]["lower_bound_s"] > 0 and flow["ratio_span_to_lb"] > 0
    assert flow["lower_bound"]["critical_path_s"] <= flow["lower_bound"]["work_s"]
    assert result["barrier_straggler"]["calls"] > 10 and "epchain" in result["barrier_straggler"]["stage_s"]


@pytest.mark.usefixtures("prefect_harness")
def test_overhead_runs_tiny(tmp_path: Path) -> None:
    _run("overhead", "--n", "1", "--cap", "1", "--obs-concurrency", "1", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "overhead-1.json").read_text())
    _machine_ok(result)
    assert result["counts"] == {"ok": 1} and result["calls"] > 10
    for key in ("overhead_per_call_s", "flow_cpu_per_call_s", "peak_rss_flow_mb"):
        assert isinstance(result[key], (int, float)), key
    # on the session's server, not a temporary one of its own: no database of its own to weigh
    assert result["prefect_home_bytes"] is None and result["peak_rss_server_mb"] is None


def test_timeout_latency_runs_tiny(tmp_path: Path) -> None:
    _run("timeout_latency", "--repeats", "1", "--timeout", "0.5", tmp=tmp_path)
    result = json.loads((tmp_path / "res" / "timeout_latency.json").read_text())
    _machine_ok(result)
    assert len(result["cases"]) == 3
    for case in result["cases"].values():
        assert case["all_timed_out"] and case["processes_left"] == 0
        assert case["max_deadline_to_gone_s"] is not None


@pytest.mark.usefixtures("prefect_harness")
def test_noop_runs_tiny(tmp_path: Path) -> None:
    _run("noop", "--n", "2", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "noop.json").read_text())
    _machine_ok(result)
    (row,) = result["sizes"]
    assert row["n"] == 2 and len(row["noop_command_s"]) == 2 and row["check_s"] >= 0
    # and the no-op re-run alone of that finished run (how 2,000 observations are timed)
    _run("noop", "--existing", str(tmp_path / "work" / "noop-2"), tmp=tmp_path, api=harness_api_url())
    (again,) = json.loads((tmp_path / "res" / "noop.json").read_text())["sizes"]
    assert again["n"] == 2 and again["first_run_s"] is None and len(again["noop_command_s"]) == 2


@pytest.mark.usefixtures("prefect_harness")
def test_three_cases_runs_tiny(tmp_path: Path) -> None:
    _run("three_cases", "--scale", "0", "--first", "1", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "three_cases.json").read_text())
    _machine_ok(result)
    (case,) = result["cases"]
    flow = case["flow"]
    assert case["slots"] == 2 and flow["calls"] > 30 and 0 < flow["first_call_s"] < flow["whole_command_s"]
    assert flow["lower_bound"]["critical_path_s"] <= flow["lower_bound"]["work_s"] and flow["ratio_span_to_lb"] > 0
    assert case["barrier"]["calls"] > 30 and "epchain" in case["barrier"]["stage_s"]


@pytest.mark.usefixtures("prefect_harness")
def test_first_call_runs_tiny(tmp_path: Path) -> None:
    _run("first_call", "--n", "1", "--repeats", "1", "--instruments", "M1", "--fast", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "first_call.json").read_text())
    _machine_ok(result)
    assert sorted(r["head_start"] for r in result["runs"]) == [False, True]
    for row in result["runs"]:
        assert row["calls"] > 5 and 0 < row["first_call_s"] <= row["first_unit_call_s"] < row["whole_s"]


@pytest.mark.usefixtures("prefect_harness")
def test_replicate_and_check_run_tiny_and_the_processes_decide_as_one(tmp_path: Path) -> None:
    # a finished run of one observation, copied into four more (replicate.py stops unless its
    # restamping leaves the source's manifest as the run wrote it)
    _run("overhead", "--n", "1", "--cap", "1", "--obs-concurrency", "1", "--instruments", "PN", "--one-band",
         tmp=tmp_path, api=harness_api_url())
    _run("replicate", "--n", "5", tmp=tmp_path)
    work = tmp_path / "work"
    obsids = sorted(d.name for d in (work / "archive").iterdir() if d.name.isdigit())
    assert len(obsids) == 5

    def check(workers: int, tag: str) -> dict:
        _run("check", "--workers", str(workers), "--tag", tag, tmp=tmp_path)
        return json.loads((tmp_path / "res" / f"check-5-{tag}.json").read_text())

    for workers in (1, 2):
        result = check(workers, f"w{workers}")
        _machine_ok(result)
        assert result["found_finished"] == 5 and result["unfinished"] == [] and result["workers"] == workers
    # a copy's cleaned list lost: every process count finds that one, and only it, unfinished
    lost = next((work / "out" / obsids[3] / "events").glob("*_clean_evts.fits"))
    lost.unlink()
    for workers in (1, 2):
        result = check(workers, f"lost{workers}")
        assert result["unfinished"] == [obsids[3]] and result["in_order"], result


@pytest.mark.usefixtures("prefect_harness")
def test_cluster_runs_tiny(tmp_path: Path) -> None:
    _run("cluster", "--n", "2", "--workers", "2", "--threads", "1", tmp=tmp_path, api=harness_api_url())
    result = json.loads((tmp_path / "res" / "cluster-2-2w.json").read_text())
    _machine_ok(result)
    assert result["counts"] == {"ok": 2} and result["server"] == "caller's"
    busy = [node for node in result["nodes"].values() if node["calls"]]
    assert busy and sum(node["calls"] for node in busy) == result["calls"] > 10
    assert all(node["observations"] >= 1 and node["span_s"] > 0 for node in busy)


def test_cluster_names_the_answers_that_are_not_2xx() -> None:
    from tests.benchmarks.cluster import _not_2xx

    log = ('127.0.0.1:1 - "GET /api/csrf-token?client=7e7f8208-2ad0-40d2-b5ae-c1e3d113e7b2 HTTP/1.1" 422\n'
           '127.0.0.1:1 - "PATCH /api/flow_runs/7e7f8208-2ad0-40d2-b5ae-c1e3d113e7b2 HTTP/1.1" 503\n'
           '127.0.0.1:1 - "POST /api/task_runs/ HTTP/1.1" 201\n')
    assert _not_2xx(log) == {"422 GET /api/csrf-token": 1, "503 PATCH /api/flow_runs/ID": 1}
