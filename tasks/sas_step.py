"""The one Prefect task behind every SAS step: Prefect's retries around the core's call.

Every step (cifbuild, epchain, espfilt...) is this task under its own name. The core does
the work (:func:`daxa_xmm.pipeline.step_run.run_call_blocking`: skip if up to date, run in its own
process group with the unit's timeout, record, raise); the task adds Prefect's retries,
which a deterministic SAS error declines (retrying ``noCounts`` would only repeat it).
"""

from __future__ import annotations

__all__ = ["sas_task", "retry_if_transient"]

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from daxa_xmm.pipeline.step_run import CallOutcome, ObsContext, run_call_blocking
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.runner import is_transient


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry timeouts, signals and OS errors; never a SAS error."""
    # Prefect hands the raised exception over as the Failed state's data.
    exc = state.data if isinstance(state.data, BaseException) else None
    return exc is not None and is_transient(exc)


def _run_name() -> str:
    from prefect.runtime import task_run

    params = task_run.parameters
    call = params.get("call")
    return f"{call.step}-{call.unit}" if call is not None else "sas"


def sas_task(name: str, retries: int = 2, retry_delay_s: float = 10.0):
    """The Prefect task for one SAS step, named ``name`` in the UI.

    Retries use exponential backoff with jitter and only for transient failures. No result
    persistence and no cache: the manifest is the cache, because it also knows whether the
    products still exist on disk.
    """

    @task(
        name=name,
        task_run_name=_run_name,
        retries=retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=retry_delay_s) if retries else 0,
        retry_jitter_factor=0.5 if retries else None,
        retry_condition_fn=retry_if_transient,
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    async def _sas_step(call: SasCall, ctx: ObsContext) -> CallOutcome:
        import anyio
        from prefect.runtime import task_run

        attempt = int(task_run.run_count or 1)
        return await anyio.to_thread.run_sync(run_call_blocking, call, ctx, attempt)

    return _sas_step
