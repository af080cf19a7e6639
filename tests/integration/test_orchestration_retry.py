"""A step whose Prefect run fails (not SAS: the API answering 503) is tried again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import flows.process_observation as po
from daxa_xmm.errors import SasTaskError
from daxa_xmm.sas.calls import SasCall

CALL = SasCall(step="espfilt", obsid="0201903501", unit="0201903501PNS003", argv=("espfilt",), cwd=Path("/x"))


class _Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, call: SasCall, ctx: object) -> dict:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"token": "t", "products": []}


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(po, "ORCHESTRATION_DELAY_S", 0.0)


def test_orchestration_failures_are_tried_again() -> None:
    step = _Flaky([RuntimeError("503 Service Unavailable"), RuntimeError("503 Service Unavailable")])
    assert asyncio.run(po.orchestrated(lambda: step(CALL, None), "espfilt"))["token"] == "t"
    assert step.calls == 3


def test_orchestration_gives_up_after_its_attempts() -> None:
    step = _Flaky([RuntimeError("503")] * po.ORCHESTRATION_ATTEMPTS)
    with pytest.raises(RuntimeError):
        asyncio.run(po.orchestrated(lambda: step(CALL, None), "espfilt"))
    assert step.calls == po.ORCHESTRATION_ATTEMPTS


def test_sas_failures_are_not_tried_again_here() -> None:
    step = _Flaky([SasTaskError("noCounts", task="espfilt")])
    with pytest.raises(SasTaskError):
        asyncio.run(po.orchestrated(lambda: step(CALL, None), "espfilt"))
    assert step.calls == 1


def test_an_observation_whose_subflow_prefect_failed_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.process_archive as pa

    attempts: list[int] = []

    async def flaky_subflow(obsid: str, config: object, ctx: object) -> po.ObservationOutcome:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("Server error '503 Service Unavailable' for url '.../api/task_runs/'")
        return po.ObservationOutcome(obsid=obsid, status="ok")

    monkeypatch.setattr(pa, "process_observation", flaky_subflow)
    outcome = asyncio.run(pa._subflow_with_retries("0201903501", None, None))  # type: ignore[arg-type]
    assert outcome.status == "ok" and len(attempts) == 3
