"""The command ``python -m flows.process_archive`` as a user runs it: dry run, demo, no SAS.

Each child process talks to the session's Prefect test backend (``PREFECT_API_URL``), so
none of them starts its own temporary server.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import cli_env, config, run_cli

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: Variables that tell daxa-xmm (or the stand-in) where SAS is; a "no SAS" child has none.
_SAS_VARS = ("SAS_DIR", "SAS_PATH", "SAS_CCFPATH", "SAS_CCF", "SAS_ODF")


def _planned_argvs(text: str) -> set[str]:
    return {line.strip()[2:] for line in text.splitlines() if line.strip().startswith("$ ")}


def test_dry_run_plans_without_running_then_plans_every_step_after_a_run(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    args = [str(tmp_path / "archive"), "--out", str(out), "--dry-run"]
    before = run_cli(args, cwd=tmp_path, env=cli_env())
    assert before.returncode == 0, before.stderr
    planned = _planned_argvs(before.stdout)
    assert any(a.startswith("cifbuild ") for a in planned) and any(a.startswith("odfingest ") for a in planned), before.stdout
    assert standin.calls() == [], "a dry run must make no SAS call (sasversion aside)"
    assert not (out / obsid / "manifest.json").exists()

    run_archive(config(tmp_path, instruments=["M1"]))  # the plan covers every instrument anyway
    made = {shlex.join([c["task"], *c["argv"]]) for c in standin.calls()}
    standin.reset_log()
    after = run_cli(args, cwd=tmp_path, env=cli_env())
    assert after.returncode == 0, after.stderr
    assert standin.calls() == []
    planned = _planned_argvs(after.stdout)
    tasks = {a.split()[0] for a in planned}
    assert {"cifbuild", "odfingest", "epchain", "emchain", "emanom", "espfilt", "evselect", "rgsproc", "eexpmap"} <= tasks
    # every call the real run made (with the default settings) is in the plan, verbatim
    missing = sorted(made - planned)
    assert not missing, f"{len(missing)} call(s) of the run are not in the dry run, e.g. {missing[:3]}"
    # the dry run honours the run's settings: MOS1 only plans no PN or RGS call
    only_m1 = run_cli([*args, "--instruments", "M1"], cwd=tmp_path, env=cli_env())
    assert only_m1.returncode == 0, only_m1.stderr
    m1_tasks = {a.split()[0] for a in _planned_argvs(only_m1.stdout)}
    assert "emchain" in m1_tasks and not {"epchain", "rgsproc"} & m1_tasks
    assert made <= _planned_argvs(only_m1.stdout)


def test_demo_runs_then_a_second_demo_makes_no_sas_call(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    env = {k: v for k, v in cli_env().items() if k not in _SAS_VARS and not k.startswith("DAXA_STANDIN_")}
    env.update(DAXA_STANDIN_LOG=str(log), DAXA_XMM_SLOTS_DIR=str(tmp_path / "slots"))
    # the demo's three observations, MOS1 only: every code path of the demo in seconds
    args = ["--demo", "--no-progress", "--instruments", "M1", "--num-cores", "2"]
    first = run_cli(args, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = tmp_path / "daxa-demo" / "processed" / "report.html"
    assert f"Report:   {report}" in first.stdout, first.stdout
    assert report.is_file()
    assert "Processed 3 observation(s): 3 ok" in first.stdout

    from daxa_xmm.standin.faults import read_call_log

    n = len([c for c in read_call_log(log) if c["task"] != "sasversion"])
    assert n > 0
    # plan first: nothing to redo needs no Prefect at all (an API nobody answers is not asked)
    second = run_cli(args, cwd=tmp_path, env={**env, "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Processed 3 observation(s): 3 ok" in second.stdout
    assert len([c for c in read_call_log(log) if c["task"] != "sasversion"]) == n, "the second demo made SAS calls"


def test_without_sas_the_command_stops_with_the_setup_message(tmp_path: Path) -> None:
    write_archive(tmp_path / "archive", 1, mix="standard")
    env = {k: v for k, v in cli_env().items() if k not in _SAS_VARS and not k.startswith("DAXA_STANDIN_")}
    # a PATH without any stand-in or SAS folder on it
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "sas" not in p.lower()) or "/usr/bin:/bin"
    res = run_cli([str(tmp_path / "archive"), "--out", str(tmp_path / "processed"), "--no-progress"], cwd=tmp_path, env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "SAS is not set up" in res.stderr, res.stderr
    assert "SAS_DIR" in res.stderr  # the message says what to set
    assert not (tmp_path / "processed").exists(), "nothing may run without SAS"
