"""The archive on a real Slurm through dask-jobqueue (issue 32.1, 32.3): ``pytest -m slurm``.

The command runs as a user runs it on a login node: ``--task-runner dask --cluster slurm
--cluster-config jobqueue.yaml``, the file in dask-jobqueue's own format. The workers are
Slurm jobs submitted with ``--export=NONE``, so they have nothing of the login node's
environment: the job prologue sets SAS up (a stand-in installed for the "compute node"),
the slot folder and the call log per job (``$SLURM_JOB_ID``). The login node has its own
stand-in, which the command checks at start; no SAS call may run with it.

Needs Debian's slurm-wlm and munge and root (tests/cluster/slurm.py); skips saying why
otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daxa_xmm.standin.synth import write_archive
from tests.cluster.nodes import REPO, Node, fault_claimed, make_node, process_env, read_calls, write_json
from tests.integration.flowkit import call_keys, cli_env, harness_api_url, manifest_records, max_overlap
from tests.reliability._support import check_products_readable, processes_with_env, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

NUM_CORES = 2


def _jobqueue_yaml(tmp_path: Path, node: Node, *, minimum: int, maximum: int) -> Path:
    """dask-jobqueue's config of the worker jobs, as a user writes it (README, "On a cluster")."""
    shared = tmp_path
    prologue = [
        "export PATH=/usr/local/bin:/usr/bin:/bin",
        f"source {node.sas_env['SAS_DIR']}/setsas.sh",
        f"export SAS_CCFPATH={node.sas_env['SAS_CCFPATH']}",
        f"export DAXA_XMM_SLOTS_DIR={node.root}/slots-$SLURM_JOB_ID",
        f"export PREFECT_API_URL={harness_api_url()}",
        f"export PYTHONPATH={REPO}",
        # the stand-in's own: each job's calls in a log of its own, faults counted on the shared folder
        f"export DAXA_STANDIN_LOG={node.root}/calls-$SLURM_JOB_ID.jsonl",
        f"export DAXA_STANDIN_STATE={shared}/standin-state",
        f"export DAXA_STANDIN_FAULTS={shared}/faults.json",
        "export DAXA_STANDIN_FAST=1",
    ]
    settings = {
        "jobqueue": {"slurm": {
            "cores": 1, "memory": "1GB", "processes": 1, "walltime": "00:15:00", "queue": "debug",
            "python": sys.executable, "log-directory": str(tmp_path / "jobs"),
            "local-directory": str(node.root / "dask"),
            "job-extra-directives": ["--export=NONE"], "job-script-prologue": prologue,
            "scheduler-options": {"dashboard_address": ":0"},  # any free port: several may run at once
        }},
        "distributed": {"adaptive": {"minimum": minimum, "maximum": maximum}},
    }
    path = tmp_path / "jobqueue.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _job_logs(node: Node) -> dict[str, list[dict]]:
    """Each job's SAS calls, by Slurm job id (the prologue named the log after it)."""
    return {p.stem.removeprefix("calls-"): read_calls(p) for p in sorted(node.root.glob("calls-*.jsonl"))}


def _argv(tmp_path: Path, archive: Path, out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out),
            "--task-runner", "dask", "--cluster", "slurm", "--cluster-config", str(config),
            "--num-cores", str(NUM_CORES), "--retry-delay", "0 s", "--no-progress"]


def test_the_demo_archive_is_processed_by_slurm_jobs(tmp_path: Path, standin, slurm) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    obsids = write_archive(archive, mix="demo")
    write_json(tmp_path / "faults.json", [])
    node = make_node(tmp_path, "compute")
    config = _jobqueue_yaml(tmp_path, node, minimum=1, maximum=2)
    done = subprocess.run(_argv(tmp_path, archive, out, config), env=cli_env(**slurm.env), cwd=tmp_path,  # noqa: S603
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [o["status"] for o in report["observations"]] == ["ok"] * len(obsids)

    jobs = _job_logs(node)
    assert jobs and all(job.isdigit() for job in jobs), f"no SAS call ran in a Slurm job: {sorted(jobs)}"
    assert len(jobs) <= 2, "adaptive scaling asked for more jobs than distributed.adaptive.maximum"
    every = [c for calls in jobs.values() for c in calls]
    recorded = {k for o in obsids for k, r in manifest_records(out, o).items() if r["argv"]}
    assert sorted(call_keys(every, out)) == sorted(recorded), "each recorded call ran once, in a job"
    assert not standin.calls(), "a SAS call ran on the login node"
    for job, calls in jobs.items():
        assert {c["SAS_DIR"] for c in calls} == {node.sas_env["SAS_DIR"]}, f"job {job} did not run the prologue's SAS"
        assert max_overlap(calls) <= NUM_CORES, job
    wait_for(lambda: not slurm.jobs(), 60, "the worker jobs to be cancelled at the end")


def _slow_call(node: Node, unit: str) -> int:
    """The pid of the running stand-in emchain of ``unit`` in a job (0 while there is none)."""
    for pid in processes_with_env("DAXA_STANDIN_FAST", "1"):
        env = process_env(pid)
        if env.get("SLURM_JOB_ID") and env.get("SAS_DIR") == node.sas_env["SAS_DIR"]:
            try:
                if f"{unit}-emchain" in os.readlink(f"/proc/{pid}/cwd"):
                    return pid
            except OSError:
                continue
    return 0


def test_a_cancelled_worker_job_loses_nothing_and_redoes_nothing(tmp_path: Path, standin, slurm) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    obsids = write_archive(archive, 3, mix="standard", start_obsid=340000001)
    unit = f"{obsids[1]}M2S002"
    write_json(tmp_path / "faults.json", [{"task": "emchain", "match": f"{unit}-emchain", "action": "sleep",
                                           "seconds": 300, "times": 1}])
    node = make_node(tmp_path, "compute")
    config = _jobqueue_yaml(tmp_path, node, minimum=1, maximum=2)
    log = tmp_path / "run.log"
    argv = [*_argv(tmp_path, archive, out, config), "--instruments", "M1", "M2"]
    run = subprocess.Popen(argv, env=cli_env(**slurm.env), cwd=tmp_path, stdout=log.open("wb"),  # noqa: S603
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        pid = int(wait_for(lambda: fault_claimed(tmp_path) and _slow_call(node, unit), 300,
                           f"{unit}'s emchain to run in a job and take its fault (to sleep)"))
        job = process_env(pid)["SLURM_JOB_ID"]
        ok_before = {(r["cwd"], *r["argv"]) for o in obsids if (out / o / "manifest.json").exists()
                     for r in manifest_records(out, o).values() if r["status"] == "ok" and r["argv"]}
        seen = {j: len(c) for j, c in _job_logs(node).items()}
        slurm.command("scancel", job)
        # the job's processes, its SAS call among them, end with it
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or process_env(pid) == {}, 60, "the job's SAS call to end")
        wait_for(lambda: job not in slurm.jobs(), 60, f"job {job} to leave the queue")
        code = run.wait(timeout=480)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    text = log.read_text(errors="replace")
    assert code == 0, text[-4000:]
    after = {j: c[seen.get(j, 0):] for j, c in _job_logs(node).items()}
    new = [c for calls in after.values() for c in calls]
    redone = [c for c in new if (c["cwd"], c["task"], *c["argv"]) in ok_before]
    assert not redone, f"finished calls were run again: {[(c['task'], c['cwd']) for c in redone]}"
    again = [j for j, calls in after.items() for c in calls if c["task"] == "emchain" and unit in c["cwd"] and c["exit"] == 0]
    assert again and job not in again, f"the lost chain must be finished by another job (cancelled: {job}, ran: {again})"
    for obsid in obsids:
        assert {r["status"] for r in manifest_records(out, obsid).values()} == {"ok"}, obsid
    check_products_readable(out, obsids)


def test_a_job_slurm_refuses_fails_the_run_at_once_saying_why(tmp_path: Path, slurm, monkeypatch) -> None:
    # dask-jobqueue alone logs the refusal and asks again, forever, while the run waits for a worker
    from daxa_xmm.errors import ConfigError
    from flows.cluster import dask_settings, start_jobqueue

    node = make_node(tmp_path, "compute")
    config = _jobqueue_yaml(tmp_path, node, minimum=0, maximum=1)
    config.write_text(config.read_text().replace("queue: debug", "queue: nosuchqueue"))
    for key, value in slurm.env.items():
        monkeypatch.setenv(key, value)
    with dask_settings(config), pytest.raises(ConfigError, match="sbatch said: .*invalid partition.*jobqueue.slurm"):
        start_jobqueue("slurm")
    assert not slurm.jobs()
