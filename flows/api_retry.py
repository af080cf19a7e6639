"""One quick second try when a Prefect server on this machine answers 503.

Prefect's client tries a request again after a 503, waiting what the answer's
``Retry-After`` header says or, without one, 2, 4, 8, 16 and 32 s. A Prefect server on its
default SQLite database answers 503 whenever two writes collide ("database is locked": a
transaction that read first could not upgrade to a write while another wrote). On a run
that creates subflows and task runs side by side this happens every few observations, and
the lock is usually gone within milliseconds, yet each collision stalled its observation
for 2 s: the flow tests spent a third of their time in these waits.

So the first 503 of a request to a server on this machine (the temporary server of a
command-line run, a local ``prefect server start``) gets a ``Retry-After`` of 0.2 s; a
further 503 of the same request gets Prefect's own waits (4, 8, 16, 32 s: 60 s in all,
about Prefect's 62). Only the first try is hurried because a SQLite server under many
observations at once was also seen locked for a whole minute (its busy timeout), with or
without this (BENCHMARKS.md, section 2b), and hurrying every try made that case worse: a
lock that outlasts 0.2 s is then left alone at Prefect's pace. A remote server keeps
Prefect's waits throughout: there a 503 may mean a server that is really down.
"""

from __future__ import annotations

__all__ = ["install", "suggest_retry_after", "LOCAL_HOSTS", "FIRST_WAIT_S"]

import functools
from typing import Any

import httpx

#: Hosts whose 503s are taken as a momentary SQLite lock.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: The wait after a request's first local 503, in seconds (later ones are Prefect's).
FIRST_WAIT_S = 0.2
_SEEN = "daxa_xmm_local_503"  # request extension: this request already had its quick try


def suggest_retry_after(response: httpx.Response) -> None:
    """Give a request's first local 503 a short ``Retry-After`` (see the module's docstring)."""
    request = response.request
    if response.status_code != 503 or "Retry-After" in response.headers or request.url.host not in LOCAL_HOSTS:
        return
    if request.extensions.get(_SEEN):  # Prefect sends the same request object again
        return
    request.extensions[_SEEN] = True
    response.headers["Retry-After"] = f"{FIRST_WAIT_S:.3f}"


async def _async_hook(response: httpx.Response) -> None:
    suggest_retry_after(response)


def _with_hook(init: Any, hook: Any) -> Any:
    @functools.wraps(init)
    def __init__(self: httpx.AsyncClient | httpx.Client, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        hooks = self.event_hooks
        # httpx calls response hooks inside ``send``, so inside Prefect's retry loop
        self.event_hooks = {**hooks, "response": [*hooks.get("response", []), hook]}

    __init__.daxa_xmm_hooked = True  # type: ignore[attr-defined]
    return __init__


def install() -> None:
    """Hook :func:`suggest_retry_after` into Prefect's HTTP clients (async and sync); idempotent."""
    from prefect.client import base

    for cls, hook in ((base.PrefectHttpxAsyncClient, _async_hook), (base.PrefectHttpxSyncClient, suggest_retry_after)):
        if not getattr(cls.__init__, "daxa_xmm_hooked", False):
            cls.__init__ = _with_hook(cls.__init__, hook)  # type: ignore[method-assign]
