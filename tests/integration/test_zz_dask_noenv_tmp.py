"""The archive flow on a real Dask LocalCluster (worker processes, not threads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daxa_xmm.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import config, harness_api_url, manifest_records

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.dask]


def _products(out: Path, obsid: str) -> dict[str, list[str]]:
    """Each step record's product file names (paths differ between runs, names must not)."""
    return {k: sorted(Path(p).name for p in r["products"]) for k, r in manifest_records(out, obsid).items()}


def test_dask_runner_makes_the_same_products_as_threads(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("prefect_dask")
    write_archive(tmp_path / "archive", 1, mix="standard")
    # Dask workers are new processes: they see os.environ as it is when the cluster starts,
    # not the harness's in-process settings, so they are pointed at the harness's API here.
    # (The stand-in's variables reach them both through os.environ and ObsContext.extra_env.)
    pass
    dask = run_archive(config(tmp_path, out="dask", instruments=["M1"], task_runner="dask", obs_concurrency=1))
    assert [o["status"] for o in dask["observations"]] == ["ok"], dask
    dask_pids = {c["pid"] for c in standin.calls()}

    threads = run_archive(config(tmp_path, out="threads", instruments=["M1"]))
    assert [o["status"] for o in threads["observations"]] == ["ok"], threads
    for o in dask["observations"]:
        assert _products(tmp_path / "dask", o["obsid"]) == _products(tmp_path / "threads", o["obsid"])
        assert all(r["status"] == "ok" for r in manifest_records(tmp_path / "dask", o["obsid"]).values())
    assert dask_pids  # the stand-in ran (from the workers), and its calls were logged
    report = json.loads((tmp_path / "dask" / "report.json").read_text())
    assert {o["status"] for o in report["observations"]} == {"ok"}
