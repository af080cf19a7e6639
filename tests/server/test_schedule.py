"""The server's own scheduler creates the scheduled reprocessing runs, and
``deployments.serve`` stops on SIGTERM as on Ctrl-C.

A server of its own, with a 2 s scheduler loop, and a serve process whose reprocessing
deployment has the weekly cron a real install would give it: the test never creates a run
itself, so a scheduler that cannot insert runs (SQLAlchemy 2.1 under prefect 3.8.8: "Can't
evaluate bulk DML statement") fails it. That such a run completes is
``test_deployments.py::test_scheduled_reprocessing_...``: a run the scheduler creates is the
deployment's parameters in a flow run, which that test starts from the API without waiting a
week (or a minute) for the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.server.conftest import CRON, DEPLOY_CONFIG, REPO, _base_env, start_server, stop_process

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_the_server_schedules_the_reprocessing_runs_and_serve_stops_on_sigterm(tmp_path: Path) -> None:
    from daxa_xmm.standin.install import install_standin
    from daxa_xmm.standin.synth import write_archive

    server = start_server(tmp_path / "server-home", PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2")
    serve = None
    try:
        archive = tmp_path / "data" / "archive"
        write_archive(archive, 1, mix="standard")
        cfg = tmp_path / "deploy.json"
        cfg.write_text(json.dumps(DEPLOY_CONFIG))
        env = _base_env(tmp_path / "serve-home")
        env.update(install_standin(tmp_path / "sas"))
        env.update(PREFECT_API_URL=server.api, PREFECT_RUNNER_POLL_FREQUENCY="1",
                   DAXA_XMM_SLOTS_DIR=str(tmp_path / "slots"))
        log = tmp_path / "serve.log"
        with open(log, "wb") as fh:
            serve = subprocess.Popen(
                [sys.executable, "-m", "deployments.serve", "--archive", str(archive), "--config", str(cfg),
                 "--cron", CRON],
                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
            )
        deadline = time.monotonic() + 200
        made: list[dict] = []
        while not made:
            assert serve.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no scheduled run created\nserver log:\n{server.log.read_text()[-3000:]}"
            deps = {d["name"]: d for d in server.post("/deployments/filter", {})}
            if "scheduled-reprocess" in deps:
                runs = server.post("/flow_runs/filter", {"flow_runs": {
                    "deployment_id": {"any_": [deps["scheduled-reprocess"]["id"]]}}})
                made = [r for r in runs if r.get("auto_scheduled")]  # created by the server's scheduler
            time.sleep(1)
        # each at the cron's time (Monday 04:17 UTC), with the deployment's parameters, waiting
        for run in made:
            when = dt.datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
            assert (when.weekday(), when.hour, when.minute) == (0, 4, 17), run["expected_start_time"]
            assert run["state_type"] == "SCHEDULED" and run["parameters"].get("reprocess") is True, run
        # one run at a time: a scheduled run due while one runs is cancelled, not overlapped
        dep = deps["scheduled-reprocess"]
        assert dep["concurrency_limit"] == 1 or dep.get("global_concurrency_limit", {}).get("limit") == 1
        assert dep["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
        assert deps["on-demand"]["concurrency_options"]["collision_strategy"] == "ENQUEUE"

        # SIGTERM (systemctl stop, docker stop) stops serve as Ctrl-C does
        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve ignored SIGTERM:\n{log.read_text()[-3000:]}")
        assert code == 0, log.read_text()[-3000:]
        assert "never awaited" not in log.read_text()
    finally:
        if serve is not None:
            stop_process(serve)
        stop_process(server.proc)
