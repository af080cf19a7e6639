"""One Prefect server for every test worker of a session, started in the background.

Each pytest-xdist worker used to start its own temporary server (``prefect_test_harness``):
some 11 s of CPU each, on a two-core machine, with the worker waiting. Now the controller
starts one when pytest is configured, while the workers collect and run the tests that need
no server; a worker waits for it only when its first flow test asks (:func:`wait_healthy`).
The workers' flow runs meet in its database; a test that reads runs back from the API finds
its own by a name no other test uses (``tests/integration/test_dask.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Where the server writes its output, for a worker's error message when it never answers.
LOG_VAR = "DAXA_XMM_TEST_PREFECT_SERVER_LOG"


@dataclass
class SharedServer:
    """The server process, its temporary PREFECT_HOME and its API URL."""

    proc: subprocess.Popen[bytes]
    home: Path
    api_url: str

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; the temporary home goes with it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the suite's servers each take one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(settings: dict[str, str]) -> SharedServer:
    """Start the server as Prefect's own temporary server runs (uvicorn on Prefect's app
    factory, SQLite in a fresh home, no UI) with ``settings`` added; returns at once."""
    home = Path(tempfile.mkdtemp(prefix="daxa-xmm-test-prefect-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(settings)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_UI_ENABLED="0",
        PREFECT__SERVER_EPHEMERAL="1",
        # Prefect's unit-test mode, for what it changes in a server: SQLite waits 30 s on a
        # locked database instead of 60. A suite run here once had all three workers' flows
        # held up 60-65 s at the same moment, the length of that wait (Prefect's SQLite lock
        # trouble under concurrent writes: Prefect issue #18934); they went on unharmed. (Only
        # in the server's environment: in a client the mode changes how requests are sent.)
        PREFECT_TESTING_UNIT_TEST_MODE="true",
    )
    log = home / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home,
        )
    os.environ[LOG_VAR] = str(log)
    return SharedServer(proc, home, f"http://127.0.0.1:{port}/api")


def wait_healthy(api_url: str, timeout_s: float = 120) -> None:
    """Return once ``api_url`` answers its health check; a server that does not within
    ``timeout_s`` (two minutes: three workers on a loaded machine) is an error naming its log."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{api_url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log = os.environ.get(LOG_VAR)
            tail = Path(log).read_text(errors="replace")[-3000:] if log and Path(log).exists() else ""
            raise RuntimeError(f"the test Prefect server at {api_url} did not answer in {timeout_s:.0f} s (log: {log})\n{tail}")
        time.sleep(0.25)
