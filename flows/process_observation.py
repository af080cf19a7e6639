"""The per-observation subflow: one ObsID, each SAS call a Prefect task.

What runs, in which order and with what dependencies, is the core's
(:func:`daxa_xmm.pipeline.observation_run.run_observation`); this module adds Prefect: the subflow,
one task per call with Prefect's retries, and a second try when Prefect itself failed to
run a step (an API 503), never for a SAS or data problem.
"""

from __future__ import annotations

__all__ = ["process_observation", "prefect_calls", "ObservationOutcome", "orchestrated"]

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import cache
from typing import TypeVar

from prefect import flow

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.pipeline.observation_run import Driver, ObservationOutcome, RunCall, run_observation, short
from daxa_xmm.pipeline.step_run import CallOutcome, ObsContext
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.runner import is_transient
from flows import api_retry
from flows.progress import progress
from tasks.sas_step import sas_task

log = logging.getLogger(__name__)
T = TypeVar("T")


@cache
def _task(name: str, retries: int, delay_s: float):
    return sas_task(name, retries, delay_s)


#: Attempts at a step when the orchestrator itself fails (not SAS: SAS failures are the
#: task's own retries). Prefect's SQLite backend answers 503 under many concurrent writes.
ORCHESTRATION_ATTEMPTS = 3
ORCHESTRATION_DELAY_S = 2.0


async def orchestrated(run: Callable[[], Awaitable[T]], what: str) -> T:
    """``await run()``, started again when Prefect (not SAS, not our data) failed to run it.

    What finished is recorded in the manifest first, so trying again never repeats finished
    work. A SAS or data problem (DaxaXmmError) and a cancellation go on at once.
    """
    for attempt in range(1, ORCHESTRATION_ATTEMPTS + 1):
        try:
            return await run()
        except (DaxaXmmError, asyncio.CancelledError):
            raise
        except Exception as exc:  # e.g. httpx.HTTPStatusError 503 from the Prefect API
            # an OS error that cannot pass (a full disk, a directory where a file should be)
            # is not Prefect's, and a stopping run starts nothing again
            if attempt == ORCHESTRATION_ATTEMPTS or interrupt.stop_requested() or (
                    isinstance(exc, OSError) and not is_transient(exc)):
                raise
            log.warning("%s: Prefect failed to run it (%s); trying again", what, short(exc))
            await asyncio.sleep(ORCHESTRATION_DELAY_S * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def prefect_calls(config: ProcessingConfig) -> RunCall:
    """Each call as its step's Prefect task (retries, the UI), tried again when Prefect
    itself failed to run it. Every process that runs calls builds this first (a Dask worker
    too), so it is where Prefect's clients learn to wait briefly on a local 503."""
    api_retry.install()

    async def run(call: SasCall, ctx: ObsContext) -> CallOutcome:
        step_task = _task(call.step, config.retries, config.retry_delay_s())
        return await orchestrated(lambda: step_task(call, ctx), f"{call.step} [{call.unit}]")

    return run


@flow(name="process-observation", flow_run_name="obs-{obsid}", validate_parameters=False)
async def process_observation(obsid: str, config: ProcessingConfig, ctx: ObsContext) -> ObservationOutcome:
    """Process one ObsID end to end; never raises for a SAS or data problem.

    Args:
        obsid: the 10-digit ObsID.
        config: the run's settings.
        ctx: shared facts for this observation (layout, SAS version, caps).

    Returns:
        The outcome: ``ok`` when every selected unit and product was made, ``partial`` when
        some failed, ``failed`` when nothing past the summary could run.
    """
    return await run_observation(obsid, config, ctx, Driver(prefect_calls(config), progress))
