"""The archive flow on a real Dask LocalCluster (worker processes, not threads)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import config, manifest_records

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.dask]


async def _flow_runs(name: str):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    async with get_client() as client:
        return await client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


def _products(out: Path, obsid: str) -> dict[str, list[str]]:
    """Each step record's product file names (paths differ between runs, names must not)."""
    return {k: sorted(Path(p).name for p in r["products"]) for k, r in manifest_records(out, obsid).items()}


@pytest.fixture
def port_8787_taken() -> Iterator[None]:
    """Dask's default dashboard port in use while the test runs, as on a shared machine
    (held here, or already held by something else)."""
    with socket.socket() as sock:
        with contextlib.suppress(OSError):  # taken already: just as good
            sock.bind(("", 8787))
            sock.listen()
        yield


@pytest.mark.usefixtures("port_8787_taken")
def test_dask_runner_makes_the_same_products_as_threads(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("prefect_dask")
    write_archive(tmp_path / "archive", 1, mix="standard", start_obsid=300000001)  # a name no other test uses
    # Dask workers are new processes. Nothing is set here for them: prefect-dask ships the
    # caller's Prefect settings context with each task (so the harness's API URL reaches the
    # workers), and the stand-in's variables travel in ObsContext.extra_env. The check that
    # the subflow ran against the harness (not a worker's own temporary server) is below.
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    dask = run_archive(config(tmp_path, out="dask", instruments=["M1"], task_runner="dask", obs_concurrency=1))
    assert [o["status"] for o in dask["observations"]] == ["ok"], dask
    (obsid,) = [o["obsid"] for o in dask["observations"]]
    subflows = asyncio.run(_flow_runs(f"obs-{obsid}"))
    assert [r.state.type.value for r in subflows] == ["COMPLETED"], "the worker's subflow is not in the harness's API"
    dask_pids = {c["pid"] for c in standin.calls()}

    threads = run_archive(config(tmp_path, out="threads", instruments=["M1"]))
    assert [o["status"] for o in threads["observations"]] == ["ok"], threads
    for o in dask["observations"]:
        assert _products(tmp_path / "dask", o["obsid"]) == _products(tmp_path / "threads", o["obsid"])
        assert all(r["status"] == "ok" for r in manifest_records(tmp_path / "dask", o["obsid"]).values())
    assert dask_pids  # the stand-in ran (from the workers), and its calls were logged
    report = json.loads((tmp_path / "dask" / "report.json").read_text())
    assert {o["status"] for o in report["observations"]} == {"ok"}
