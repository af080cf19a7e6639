"""A local Prefect server's first 503 (SQLite busy) is tried again after 0.2 s, not Prefect's 2 s,
and later ones after Prefect's own waits; a remote server's 503 keeps Prefect's waits (flows/api_retry.py).

Prefect's own clients are used against a fake transport; the waits they would sleep are
recorded instead of slept, so nothing here depends on time.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prefect.client import base

from flows import api_retry


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits Prefect's retry loop asks for, recorded and not slept."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(base.anyio, "sleep", record)
    monkeypatch.setattr(base.time, "sleep", asked.append)
    api_retry.install()
    return asked


def _busy_then_ok(busy: int, headers: dict[str, str] | None = None) -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if len(seen) <= busy:
            return httpx.Response(503, json={"exception_message": "Service Unavailable"}, headers=headers)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(answer), seen


def _async_get(url: str, transport: httpx.MockTransport) -> httpx.Response:
    async def go() -> httpx.Response:
        async with base.PrefectHttpxAsyncClient(transport=transport, enable_csrf_support=False) as client:
            return await client.get(url)

    return asyncio.run(go())


def test_a_local_503_is_retried_after_a_short_wait_then_prefects(waits: list[float]) -> None:
    transport, seen = _busy_then_ok(3)
    response = _async_get("http://127.0.0.1:4200/api/flow_runs/", transport)
    assert response.status_code == 200 and len(seen) == 4
    # Prefect adds up to 20% jitter above a Retry-After, never below it; its own 2**n has jitter both ways
    assert len(waits) == 3 and 0.2 <= waits[0] <= 0.3, waits
    assert 4 * 0.8 <= waits[1] <= 4 * 1.2 and 8 * 0.8 <= waits[2] <= 8 * 1.2, waits


def test_after_the_quick_try_the_waits_are_prefects_own(waits: list[float]) -> None:
    # SQLite servers were seen locked for their whole busy timeout (60 s): five 503s in a row
    # must still wait about as long as Prefect would, not hammer the server
    transport, seen = _busy_then_ok(5)
    assert _async_get("http://127.0.0.1:4200/api/task_runs/", transport).status_code == 200 and len(seen) == 6
    assert len(waits) == 5 and sum(waits) >= 0.2 + 60 * 0.8, waits  # 0.2 + Prefect's 4+8+16+32, with its jitter


def test_the_sync_client_gets_the_same_waits(waits: list[float]) -> None:
    transport, seen = _busy_then_ok(2)
    with base.PrefectHttpxSyncClient(transport=transport, enable_csrf_support=False) as client:
        response = client.get("http://localhost:4200/api/health")
    assert response.status_code == 200 and len(seen) == 3
    assert len(waits) == 2 and 0.2 <= waits[0] <= 0.3 and waits[1] >= 4 * 0.8, waits


def test_a_remote_503_keeps_prefects_waits(waits: list[float]) -> None:
    transport, seen = _busy_then_ok(1)
    response = _async_get("http://prefect.example.org/api/flow_runs/", transport)
    assert response.status_code == 200 and len(seen) == 2
    assert len(waits) == 1 and waits[0] >= 1.0, waits  # Prefect's 2 s, with its jitter


def test_a_servers_own_retry_after_is_kept(waits: list[float]) -> None:
    transport, _ = _busy_then_ok(1, headers={"Retry-After": "5"})
    assert _async_get("http://127.0.0.1:4200/api/flow_runs/", transport).status_code == 200
    assert len(waits) == 1 and waits[0] >= 5.0, waits


def test_install_is_idempotent() -> None:
    api_retry.install()
    api_retry.install()
    client = base.PrefectHttpxSyncClient()
    try:
        assert client.event_hooks["response"].count(api_retry.suggest_retry_after) == 1
    finally:
        client.close()
