"""The archive on a Dask scheduler and workers that are their own processes (issue 32.2-3).

``dask scheduler`` and two ``dask worker`` commands, each worker with its node's own SAS
set-up (a stand-in installed for that node), SAS slot folder and call log; the archive and
the products are on the test's folder, shared by all. The flow connects with
``dask_address``, as ``--task-runner dask --dask-address tcp://...`` does. Everything is
read from the call logs and the manifests, never from how long something took.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.cluster.nodes import DaskProcesses, fault_claimed, make_node, owner_pid, process_env, write_json
from tests.integration.flowkit import call_keys, cli_env, config, manifest_records, max_overlap
from tests.reliability._support import check_products_readable, owned_by, processes_with_env, wait_for

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _obsids_of(calls: list[dict], out: Path) -> set[str]:
    return {Path(c["cwd"]).relative_to(out).parts[0] for c in calls}


def _ok_calls(out: Path, obsids: list[str]) -> set[tuple[str, ...]]:
    """(cwd, argv) of every call the manifests record ``ok`` (placements have no argv)."""
    return {(r["cwd"], *r["argv"]) for o in obsids if (out / o / "manifest.json").exists()
            for r in manifest_records(out, o).values() if r["status"] == "ok" and r["argv"]}


@pytest.fixture
def dask_procs(tmp_path: Path):
    procs = DaskProcesses(tmp_path)
    yield procs
    procs.stop()


def test_two_workers_share_the_archive_each_with_its_own_sas_and_cap(tmp_path: Path, standin, dask_procs) -> None:
    obsids = write_archive(tmp_path / "archive", 4, mix="standard", start_obsid=320000001)
    out = tmp_path / "processed"
    write_json(tmp_path / "faults.json", [])
    nodes = [make_node(tmp_path, "node-a"), make_node(tmp_path, "node-b")]
    dask_procs.start(nodes, tmp_path, DAXA_STANDIN_DURATIONS='{"emchain": 0.3, "espfilt": 0.3, "evselect": 0.3}')

    result = run_archive(config(tmp_path, instruments=["M1", "M2"], num_cores=2, task_runner="dask",
                                dask_address=dask_procs.address))
    assert [o["status"] for o in result["observations"]] == ["ok"] * 4, result

    assert not standin.calls(), "a SAS call ran in the flow's own process, not on a worker"
    every = [c for n in nodes for c in n.calls()]
    keys = call_keys(every, out)
    recorded = {k for o in obsids for k, r in manifest_records(out, o).items() if r["argv"]}
    assert sorted(keys) == sorted(recorded), "each recorded call ran once, on one of the workers"
    spread = []
    for node in nodes:
        calls = node.calls()
        # each node ran SAS as its own environment set it up, and never more than num_cores at once
        assert {c["SAS_DIR"] for c in calls} == {node.sas_env["SAS_DIR"]}, node.name
        assert max_overlap(calls) <= 2, node.name
        assert (node.slots / socket.gethostname()).is_dir(), f"{node.name}'s calls took no slot of its own folder"
        spread.append(_obsids_of(calls, out))
    assert not (standin.root / "slots").exists(), "a worker took its slots in the flow's folder, not its own"
    # every observation ran whole on one worker, and each worker had some (both joined before
    # the run began, and a worker with one thread takes one observation at a time)
    assert all(spread) and not spread[0] & spread[1] and spread[0] | spread[1] == set(obsids), spread


def _slow_call_process(shared: Path, unit: str) -> int:
    """The pid of the running stand-in call of ``unit``'s emchain (found by its cwd)."""
    for pid in processes_with_env("DAXA_STANDIN_STATE", str(shared / "standin-state")):
        try:
            if f"{unit}-emchain" in os.readlink(f"/proc/{pid}/cwd") or unit in Path(f"/proc/{pid}/cmdline").read_text():
                return pid
        except OSError:
            continue
    return 0


def test_a_worker_killed_mid_run_loses_nothing_and_redoes_nothing(tmp_path: Path, standin, dask_procs) -> None:
    first, second, third = write_archive(tmp_path / "archive", 3, mix="standard", start_obsid=330000001)
    out = tmp_path / "processed"
    unit = f"{second}M2S002"
    # the second observation's MOS2 chain sits (once) until its worker is killed
    write_json(tmp_path / "faults.json", [{"task": "emchain", "match": f"{unit}-emchain", "action": "sleep",
                                           "seconds": 300, "times": 1}])
    nodes = [make_node(tmp_path, "node-a"), make_node(tmp_path, "node-b")]
    dask_procs.start(nodes, tmp_path)
    argv = [str(tmp_path / "archive"), "--out", str(out), "--instruments", "M1", "M2", "--num-cores", "2",
            "--task-runner", "dask", "--dask-address", dask_procs.address, "--no-progress", "--retry-delay", "0 s"]
    log = tmp_path / "run.log"
    run = subprocess.Popen([sys.executable, "-m", "flows.process_archive", *argv], env=cli_env(), cwd=tmp_path,  # noqa: S603
                           stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sas_pid = int(wait_for(lambda: fault_claimed(tmp_path) and _slow_call_process(tmp_path, unit), 240,
                               f"{unit}'s emchain to run and take its fault (to sleep)"))
        env = process_env(sas_pid)
        worker = owner_pid(sas_pid)
        assert worker is not None and env["SAS_DIR"] in {n.sas_env["SAS_DIR"] for n in nodes}, env
        token = env["DAXA_XMM_OWNER"]
        done_before = _ok_calls(out, [first, second, third])
        calls_before = {n.name: len(n.calls()) for n in nodes}
        os.kill(worker, signal.SIGKILL)  # the worker process (its nanny starts another)

        # the lost worker's SAS processes die with it (its watchdog), before anything runs again
        wait_for(lambda: not owned_by(token), 30, f"the SAS processes of the killed worker {worker} to end")
        code = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    text = log.read_text(errors="replace")
    assert code == 0, text[-4000:]
    # the observation it held was finished elsewhere; nothing that had finished ran again
    new = [c for n in nodes for c in n.calls()[calls_before[n.name]:]]
    redone = [c for c in new if (c["cwd"], c["task"], *c["argv"]) in done_before]
    assert not redone, f"finished calls were run again: {[(c['task'], c['cwd']) for c in redone]}"
    assert any(c["task"] == "emchain" and unit in c["cwd"] and c["exit"] == 0 for c in new), "the lost chain ran again"
    for obsid in (first, second, third):
        assert {r["status"] for r in manifest_records(out, obsid).values()} == {"ok"}, obsid
    check_products_readable(out, [first, second, third])
