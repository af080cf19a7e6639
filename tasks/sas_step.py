"""The one Prefect task behind every SAS step: skip if up to date, run, record, raise.

Every step (cifbuild, epchain, espfilt...) is this task under its own name, so retries,
the concurrency cap, the manifest and the skip logic are written once. The core does the
work: :func:`daxa_xmm.runner.run_sas` runs the call in its own process group and kills the
whole group at the unit's timeout; the task adds Prefect's retries, which a deterministic
SAS error declines (retrying ``noCounts`` would only repeat it).
"""

from __future__ import annotations

__all__ = ["ObsContext", "LeftoversGone", "STALE_MESSAGE", "StepSkipped", "sas_task", "run_call_blocking", "retry_if_transient"]

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from daxa_xmm.calls import SasCall, SasResult
from daxa_xmm.ccf import ccf_stale_reason
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.identity import record_token
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.manifest import ManifestStore, call_facts, missing_leftovers
from daxa_xmm.runner import is_transient, raise_for_result, run_sas
from daxa_xmm.slots import FileSlots
from daxa_xmm.steps.cifbuild import analysis_date_used

log = logging.getLogger(__name__)

#: Which pipeline step (config's ``steps``/``force`` names) a call's step belongs to.
PIPELINE_STEP: dict[str, str] = {
    "epchain_oot": "epchain",
    "rgs_events": "rgsproc",
    "rgs_angles": "rgsproc",
    "cleaned_rgs_event_lists": "rgsproc",
    "cleaned_evt_lists_oot": "cleaned_evt_lists",
    "image": "generate_images_expmaps",
    "expmap": "generate_images_expmaps",
}


def pipeline_step(call_step: str) -> str:
    """``epchain_oot`` -> ``epchain``; ``merge_subexposures_2`` -> ``merge_subexposures``."""
    if call_step.startswith("merge_subexposures"):
        return "merge_subexposures"
    return PIPELINE_STEP.get(call_step, call_step)


class StepSkipped(DaxaXmmError, RuntimeError):
    """A step was not selected (``--steps``) and has no up-to-date products to reuse.

    ``stale``: it has products, made from inputs that changed since (marked ``stale``); a
    partial run that leaves them so did what it was asked and is not a failure.
    """

    def __init__(self, message: str, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


#: Why a product of a partial run is stale, for the manifest and the report.
STALE_MESSAGE = "stale: made from inputs that changed since; run this step (or the whole pipeline) to remake it"


class LeftoversGone(DaxaXmmError, RuntimeError):
    """A call must run but the files an earlier call left in its cwd are gone.

    The chain that runs the call redoes the calls from the one that started that working
    folder, then this one (flows.process_observation).
    """


@dataclass(frozen=True)
class ObsContext:
    """What every step of one observation shares; small and picklable (Dask ships it).

    Attributes:
        layout: the archive layout.
        obsid: the observation.
        sas_version: the SAS version string (part of every fingerprint).
        num_cores: at most this many SAS processes at once on one machine.
        slots_root: folder of the cross-process slot files that enforce ``num_cores``.
        steps: the selected pipeline steps (None: all).
        force: pipeline steps to re-run even when up to date.
        extra_env: variables every SAS call gets (the stand-in's settings, for instance).
    """

    layout: ArchiveLayout
    obsid: str
    sas_version: str
    num_cores: int
    slots_root: Path
    steps: frozenset[str] | None = None
    force: frozenset[str] = frozenset()
    extra_env: dict[str, str] = field(default_factory=dict)

    def store(self) -> ManifestStore:
        return _store(self.layout.manifest(self.obsid), self.obsid)

    def slots(self) -> FileSlots:
        # One set of slots per host: num_cores is a property of a machine, and on a cluster
        # each node caps its own SAS processes (flock is not reliable across NFS hosts).
        return FileSlots(self.slots_root / socket.gethostname(), self.num_cores)


_stores: dict[tuple[str, str], ManifestStore] = {}
_stores_lock = threading.Lock()


def _store(path: Path, obsid: str) -> ManifestStore:
    """One ManifestStore per manifest per process, so its thread lock is shared."""
    with _stores_lock:
        key = (str(path), obsid)
        if key not in _stores:
            _stores[key] = ManifestStore(path, obsid)
        return _stores[key]


def _token(store: ManifestStore, call: SasCall) -> str:
    """This call's product identity, from its record (daxa_xmm.identity)."""
    return record_token(store.get(call.unit, call.step))


def _stale_ccf(call: SasCall, ctx: ObsContext) -> bool:
    """True for a cifbuild whose ccf.cif lists a vanished CCF or predates newer calibration.

    When the rebuilt index lists another calibration set, its token changes and everything
    downstream is reprocessed too.
    """
    if call.step != "cif_build":
        return False
    paths = ctx.extra_env.get("SAS_CCFPATH") or os.environ.get("SAS_CCFPATH", "")
    reason = ccf_stale_reason(ctx.layout.ccf(ctx.obsid), [Path(p) for p in paths.split(os.pathsep) if p],
                              analysis_now=call.extra.get("analysis_date", "now") == "now")
    if reason and ctx.layout.ccf(ctx.obsid).exists():
        log.warning("%s: rebuilding the calibration index: %s", ctx.obsid, reason)
    return reason is not None


def _facts(result: SasResult) -> dict[str, Any]:
    """The call's facts for its record; cifbuild's ``now`` becomes the date it used."""
    call = result.call
    facts = call_facts(call)
    if call.step == "cif_build" and result.ok and "analysis_date" in facts:
        facts["analysis_date"] = analysis_date_used(result.products[0], str(facts["analysis_date"]), result.started)
    return facts


def run_call_blocking(call: SasCall, ctx: ObsContext, attempt: int = 1) -> dict[str, Any]:
    """Run (or skip) one call; return ``{"token", "skipped", "products"}``.

    Raises:
        SasTaskError: (or a subclass) when the call failed; ``transient`` says whether a
            retry may help.
        StepSkipped: when the step is not selected and nothing reusable exists.
    """
    store = ctx.store()
    step = pipeline_step(call.step)
    forced = step in ctx.force or _stale_ccf(call, ctx)
    selected = ctx.steps is None or step in ctx.steps
    if not forced and store.is_up_to_date(call, ctx.sas_version):
        rec = store.get(call.unit, call.step)
        products = rec.products if rec is not None else []
        return {"token": _token(store, call), "skipped": True, "products": [str(p) for p in products]}
    if not selected and not forced:
        if store.mark_stale(call, STALE_MESSAGE) is not None:
            raise StepSkipped(f"{call.step} [{call.unit}]: step not selected; its products are stale", stale=True)
        raise StepSkipped(f"{call.step} [{call.unit}]: step not selected and no up-to-date products to reuse")
    gone = missing_leftovers(store.snapshot(), call)
    if gone:
        raise LeftoversGone(f"{call.step} [{call.unit}]: {call.reads_cwd_of} must be redone first; "
                            f"{', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''} gone from {call.cwd}")
    result = run_sas(call, log_dir=ctx.layout.logs_dir(ctx.obsid), extra_env=ctx.extra_env, slot=ctx.slots())
    store.record(result, ctx.sas_version, attempts=attempt, facts=_facts(result))
    raise_for_result(result)
    return {"token": _token(store, call), "skipped": False, "products": [str(p) for p in result.products]}


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
    async def _sas_step(call: SasCall, ctx: ObsContext) -> dict[str, Any]:
        import anyio
        from prefect.runtime import task_run

        attempt = int(task_run.run_count or 1)
        return await anyio.to_thread.run_sync(run_call_blocking, call, ctx, attempt)

    return _sas_step
