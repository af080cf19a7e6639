"""Shared fixtures: where the real SAS samples are, and skipping cleanly without them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# No Hypothesis test may fail for being slow: its 200 ms deadline per example and its check on
# how fast examples are made measure the machine, which runs three test workers on two cores.
settings.register_profile("daxa-xmm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("daxa-xmm")
#: Real SAS files live outside the repository: ``DAXA_XMM_SAMPLES``, else ../shared/xmm-samples.
SAMPLES = Path(os.environ.get("DAXA_XMM_SAMPLES") or REPO.parent / "shared" / "xmm-samples")


def pytest_configure(config: pytest.Config) -> None:
    """Keep bytecode caches for this session, even under ``PYTHONDONTWRITEBYTECODE``.

    The suite starts some 1,500 Python processes: every SAS stand-in call, CLI run, server
    and test worker. Without caches each compiles this repository's modules from source
    again (a fast stand-in call took about 80 ms of CPU instead of 45), and each worker
    rewrites every test module's asserts again. The variable is dropped here, in the process
    that starts the workers, so that they and everything they start inherit that; the caches
    go where Python puts them (``__pycache__``, ignored by git).
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    _start_shared_server(config)


def _start_shared_server(config: pytest.Config) -> None:
    """With test workers (``-n``), the controller starts the one Prefect server they all use
    (:mod:`tests.shared_server`), unless one is named; a run without workers starts its own
    when a test first needs it (``prefect_harness``)."""
    if hasattr(config, "workerinput") or os.environ.get(PREFECT_API_VAR) or not config.getoption("numprocesses", None):
        return
    from tests import shared_server

    server = shared_server.start(_harness_server_env())
    config.add_cleanup(server.stop)
    os.environ[PREFECT_API_VAR] = server.api_url  # the workers inherit it


@pytest.fixture(scope="session")
def xmm_samples() -> Path:
    """The folder of real SAS files; skips the test with a reason when it is absent, except
    under CI (``CI`` set), where a missing sample folder is an error, not a skip."""
    if not SAMPLES.is_dir():
        why = f"real SAS samples not found at {SAMPLES} (set DAXA_XMM_SAMPLES, or put them in ../shared/xmm-samples)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return SAMPLES


class StandinSAS:
    """The SAS stand-in installed for one test, with its call log and fault rules.

    It starts in fast mode (``DAXA_STANDIN_FAST``, see :mod:`daxa_xmm.standin.fast`): every
    call is a real process with SAS's arguments checked, faults, durations and the call
    log, but the chains and products write placeholders under their real names instead of
    importing astropy and simulating events (40 ms a call instead of about 1 s). What the
    flow does with calls (retries, timeouts, kills, resume, records) is tested so; a test of
    what a product holds (cleaning expressions, emanom's CCD choice, images, the demo)
    calls :meth:`real_products` first.

    Attributes:
        root: where it is installed.
        env: the variables it set (PATH, SAS_DIR, SAS_CCFPATH...).
        call_log: JSONL file of every SAS call made (task, argv, cwd, start, end, exit).
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from daxa_xmm.standin.install import install_standin

        self.root = root
        self.env = install_standin(root)
        self.call_log = root / "calls.jsonl"
        self.faults_file = root / "faults.json"
        self._mp = monkeypatch
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DAXA_STANDIN_LOG", str(self.call_log))
        monkeypatch.setenv("DAXA_STANDIN_STATE", str(root / "state"))
        monkeypatch.setenv("DAXA_XMM_SLOTS_DIR", str(root / "slots"))
        monkeypatch.setenv("DAXA_STANDIN_FAST", "1")

    def real_products(self) -> None:
        """Run every task for real: real event lists, images and emanom verdicts."""
        self._mp.delenv("DAXA_STANDIN_FAST", raising=False)

    def faults(self, rules: list[dict]) -> None:
        """Inject faults: each rule {"task", "match", "action", ...} (see daxa_xmm.standin.faults)."""
        import json

        self.faults_file.write_text(json.dumps(rules))
        self._mp.setenv("DAXA_STANDIN_FAULTS", str(self.faults_file))

    def no_faults(self) -> None:
        self._mp.delenv("DAXA_STANDIN_FAULTS", raising=False)

    def durations(self, spec: dict) -> None:
        import json

        self._mp.setenv("DAXA_STANDIN_DURATIONS", json.dumps(spec))

    def calls(self, *, sas_only: bool = True) -> list[dict]:
        """Every call logged so far (without ``sasversion`` when ``sas_only``)."""
        from daxa_xmm.standin.faults import read_call_log

        if not self.call_log.exists():
            return []
        rows = read_call_log(self.call_log)
        return [r for r in rows if not (sas_only and r["task"] == "sasversion")]

    def reset_log(self) -> None:
        self.call_log.unlink(missing_ok=True)


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandinSAS:
    """The SAS stand-in on PATH for this test only."""
    return StandinSAS(tmp_path / "sas", monkeypatch)


#: A Prefect API that is already up, for the flow tests to use instead of starting their own
#: (the suite's child pytest runs get the parent's; or a server of yours).
PREFECT_API_VAR = "DAXA_XMM_TEST_PREFECT_API_URL"


def _harness_server_env() -> dict[str, str]:
    """What the CLI's temporary server runs without (flows.cli.TEMPORARY_SERVER_SERVICES_OFF),
    for the test server too; the served deployments' tests run a full ``prefect server start``."""
    from flows.cli import TEMPORARY_SERVER_SERVICES_OFF

    return {**TEMPORARY_SERVER_SERVICES_OFF, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test backend for the whole session (it takes 10-20 s to start): the server
    named by ``DAXA_XMM_TEST_PREFECT_API_URL`` (the workers' shared one, or one of yours),
    waited for until it answers, else a temporary one of this process's own.

    Heartbeats are turned off: they only serve crash detection on a server, and a sync flow
    waits up to a second at exit for its heartbeat thread.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    quiet = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    if url := os.environ.get(PREFECT_API_VAR):
        from tests.shared_server import wait_healthy

        wait_healthy(url)
        with temporary_settings(updates={PREFECT_API_URL: url, **quiet}):
            yield
        return
    with pytest.MonkeyPatch.context() as env:  # the server subprocess inherits these
        for key, value in _harness_server_env().items():
            env.setenv(key, value)
        with prefect_test_harness(server_startup_timeout=120):  # a loaded machine
            with temporary_settings(updates=quiet):
                yield
