"""A real Prefect server and a real ``python -m deployments.serve``, started and stopped here.

Session-scoped: the server takes ~15 s to start, so every server test shares one, and one
serve process with the two deployments. Each process is started in its own session and
stopped by its PID's process group whatever the outcome: SIGTERM, then SIGKILL when it is
still alive after a grace period (serve ignores a first SIGTERM in some versions).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.shared_server import free_port

REPO = Path(__file__).resolve().parents[2]
PREFECT = Path(sys.executable).parent / "prefect"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
#: Settings every deployment test relies on; a test may override parameters per run.
DEPLOY_CONFIG = {"instruments": ["PN"], "num_cores": 2, "retry_delay": "0 s", "retries": 0,
                 "espfilt": {"allowed_sigma": 2.5}, "images": {"bands": [["0.5 keV", "2 keV"]]}}
CRON = "17 4 * * 1"


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop ``proc`` and its whole process group: SIGTERM, then SIGKILL; reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    # The group may outlive its leader (flow-run children): kill whatever is left.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
        pass


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    return env


@dataclass
class Server:
    """The running server: its URLs and a small REST client."""

    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """One API call; a 503 (SQLite busy under concurrent writes) is retried, as Prefect's client
        does, and so is a read that timed out: a SQLite server on a loaded machine was once seen
        to answer nothing for 60 s (its busy timeout) and then go on, the flow run unharmed."""
        import httpx

        for attempt in range(8):
            try:
                r = httpx.request(method, f"{self.api}{path}", timeout=30, **kw)
            except httpx.TimeoutException:
                if method != "GET" or attempt == 7:
                    raise
                continue
            if r.status_code != 503:
                break
            time.sleep(0.5 * 2 ** min(attempt, 3))
        return r

    def get(self, path: str) -> Any:
        r = self.request("GET", path)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.request("POST", path, json=body or {})
        r.raise_for_status()
        return r.json()


def start_server(home: Path, **extra_env: str) -> Server:
    """``prefect server start`` on 127.0.0.1, a free port, PREFECT_HOME ``home`` (SQLite);
    returns once it answers /health. The caller stops it with :func:`stop_process`."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _base_env(home)
    # The UI must call this API, not the default 127.0.0.1:4200.
    env["PREFECT_UI_API_URL"] = f"{url}/api"
    # A run queued behind the deployment's limit (ENQUEUE) is offered again after this many
    # seconds; Prefect's 30 s default would make each queued test run wait half a minute.
    env["PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS"] = "1"
    env.update(extra_env)
    log = home / "server.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=home,
        )
    server = Server(url, proc, log)
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy after 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    except BaseException:
        stop_process(proc)
        raise


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``prefect server start`` on 127.0.0.1, a free port and a temporary PREFECT_HOME (SQLite)."""
    server = start_server(tmp_path_factory.mktemp("prefect-home"))
    try:
        yield server
    finally:
        stop_process(server.proc)


@dataclass
class Served:
    """The serve process, its workspace and the two deployments' ids."""

    server: Server
    proc: subprocess.Popen
    root: Path  # the allowed archive root
    archive: Path  # the deployments' default archive
    standin_env: dict[str, str]
    call_log: Path
    faults: Path
    ccf_extra: Path  # a second CCF folder on SAS_CCFPATH, for new calibration issues
    on_demand: dict[str, Any]
    scheduled: dict[str, Any]
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        from daxa_xmm.standin.faults import read_call_log

        if not self.call_log.exists():
            return []
        return [r for r in read_call_log(self.call_log) if r["task"] != "sasversion"]

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.faults.write_text(json.dumps(rules))

    def run(self, deployment: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a flow run for ``deployment`` as the UI's run form does."""
        body = {"parameters": parameters or {}, "state": {"type": "SCHEDULED", "name": "Scheduled"}}
        return self.server.post(f"/deployments/{deployment['id']}/create_flow_run", body)

    def wait(self, run_id: str, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.server.get(f"/flow_runs/{run_id}")
            if run["state_type"] in TERMINAL:
                return run
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"flow run {run_id} still {run['state_type']} after {timeout_s} s:\n"
                                   f"{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def artifacts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Artifacts of the run and of its subflows, by key."""
        ids = [run_id] + [r["id"] for r in self.server.post(
            "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}})]
        arts = self.server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": ids}}})
        return {a["key"]: a for a in arts if a.get("key")}


@pytest.fixture(scope="session")
def served(prefect_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``python -m deployments.serve`` against the server, with the SAS stand-in on its PATH."""
    from daxa_xmm.standin.install import install_standin
    from daxa_xmm.standin.synth import write_archive

    work = tmp_path_factory.mktemp("served")
    root = work / "data"
    archive = root / "sched" / "archive"
    write_archive(archive, 1, mix="standard")
    standin = install_standin(work / "sas")
    ccf_extra = work / "ccf-extra"
    ccf_extra.mkdir()
    call_log, faults = work / "calls.jsonl", work / "faults.json"
    faults.write_text("[]")
    cfg = work / "deploy.yaml"
    cfg.write_text(json.dumps(DEPLOY_CONFIG))  # JSON is YAML
    env = _base_env(work / "serve-home")
    env.update(standin)
    env.update(
        PREFECT_API_URL=prefect_server.api,
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        SAS_CCFPATH=f"{standin['SAS_CCFPATH']}:{ccf_extra}",
        DAXA_STANDIN_LOG=str(call_log),
        DAXA_STANDIN_STATE=str(work / "standin-state"),
        DAXA_STANDIN_FAULTS=str(faults),
        DAXA_XMM_SLOTS_DIR=str(work / "slots"),
        DAXA_XMM_REPROCESS_CRON=CRON,
        # the stand-in's fast mode (tests/conftest.py's StandinSAS): these tests are about
        # deployments, parameters, schedules and records; cifbuild stays real (the new
        # calibration issue is read from its ccf.cif)
        DAXA_STANDIN_FAST="1",
    )
    log = work / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "--archive", str(archive), "--config", str(cfg),
             "--archive-root", str(root)],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 90
        deps: dict[str, Any] = {}
        while len(deps) < 2:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployments not registered after 90 s:\n{log.read_text()[-3000:]}")
            deps = {d["name"]: d for d in prefect_server.post("/deployments/filter", {})}
            time.sleep(0.5)
        yield Served(prefect_server, proc, root, archive, standin, call_log, faults, ccf_extra,
                     deps["on-demand"], deps["scheduled-reprocess"], log)
    finally:
        stop_process(proc)
        print(f"\nserve log: {log}\nserver log: {prefect_server.log}")
