"""The CLI's temporary Prefect server runs without the services that only keep what nobody
sees (flows.cli.TEMPORARY_SERVER_SERVICES_OFF); a user's own setting wins."""

from __future__ import annotations

import os

import pytest

from flows.cli import TEMPORARY_SERVER_SERVICES_OFF, quiet_prefect


def test_the_services_are_off_unless_the_user_keeps_one(monkeypatch: pytest.MonkeyPatch) -> None:
    others = ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_LOG_PRINTS", "DO_NOT_TRACK",
              "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    for key in (*TEMPORARY_SERVER_SERVICES_OFF, *others):  # restored after the test
        monkeypatch.delenv(key, raising=False)
    kept = "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"
    monkeypatch.setenv(kept, "true")
    quiet_prefect()
    assert os.environ[kept] == "true"
    assert all(os.environ[k] == "false" for k in TEMPORARY_SERVER_SERVICES_OFF if k != kept)

    from prefect.settings import Settings

    services = Settings().server.services  # the names are Prefect's real settings, read from the environment
    assert not services.event_persister.enabled and not services.task_run_recorder.enabled
    assert services.triggers.enabled
