"""One SAS call of the pipeline, without Prefect: skip it if up to date, else run and record it.

The archive flow's task (tasks/sas_step.py) and DAXA's step functions both run every call
through :func:`run_call_blocking`; the task adds Prefect's retries, which a deterministic
SAS error declines (retrying ``noCounts`` would only repeat it). What decides is here: the
manifest (is the call up to date? what did it make?), the steps a partial run selected or
forced, a calibration index gone stale, files an earlier call left in a shared folder.
"""

from __future__ import annotations

__all__ = [
    "observation_context",
    "slots_root",
    "ObsContext",
    "CallOutcome",
    "LeftoversGone",
    "InputsRemoved",
    "STALE_MESSAGE",
    "StepSkipped",
    "ccf_paths",
    "calibration_stale",
    "run_call_blocking",
    "stop_if_disk_full",
]

import logging
import os
import socket
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daxa_xmm.errors import DaxaXmmError, DiskFull, is_disk_full
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.identity import mark_superseded, record_token
from daxa_xmm.pipeline.manifest import Manifest, StepRecord, call_facts, missing_leftovers, record_result
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.pipeline.stages import pipeline_step
from daxa_xmm.pipeline.storage import removed_inputs
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calindex import ccf_stale_reason
from daxa_xmm.sas.calls import SasCall, SasResult
from daxa_xmm.sas.placement import place
from daxa_xmm.sas.runner import raise_for_result, run_sas
from daxa_xmm.sas.slots import FileSlots
from daxa_xmm.steps.cifbuild import analysis_date_used

if TYPE_CHECKING:
    from daxa_xmm.config import ProcessingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallOutcome:
    """What a call that ran or was skipped left: its identity token and its products.

    ``quality``: why its products hold nothing usable, when the call is a data-quality
    outcome (made now or reused); the chain then runs nothing the call feeds."""

    token: str
    skipped: bool
    products: tuple[str, ...]
    quality: str = ""


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


class InputsRemoved(DaxaXmmError, RuntimeError):
    """A call must run but products it reads were removed by the storage policy.

    The run remakes the calls that made them (and those that modified them), keeping their
    identity, then runs this one (:mod:`daxa_xmm.pipeline.observation_run`).
    """

    def __init__(self, message: str, paths: list[Path]) -> None:
        super().__init__(message)
        self.paths = paths


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
        extra_env: variables every SAS call gets on top of the inherited ones (what a Dask worker may lack).
        priority: the typical time of the work behind the call made under this context
            (:func:`daxa_xmm.pipeline.stages.path_s`): when every slot is taken, the waiting call
            with the most behind it runs first.
        remaking: the calls run under this context remake products the storage policy
            removed: each keeps the identity its product had when made with the same
            fingerprint, so what was made from it stays valid.
    """

    layout: ArchiveLayout
    obsid: str
    sas_version: str
    num_cores: int
    slots_root: Path
    steps: frozenset[str] | None = None
    force: frozenset[str] = frozenset()
    extra_env: dict[str, str] = field(default_factory=dict)
    priority: float = 0.0
    remaking: bool = False

    def store(self) -> ManifestStore:
        return _store(self.layout.manifest(self.obsid), self.obsid)

    def slots(self) -> FileSlots:
        # One set of slots per host: num_cores is a property of a machine, and on a cluster
        # each node caps its own SAS processes (flock is not reliable across NFS hosts).
        return FileSlots(self.slots_root / socket.gethostname(), self.num_cores, priority=self.priority)


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
    """This call's product identity, from its record (daxa_xmm.pipeline.identity)."""
    return record_token(store.get(call.unit, call.step))


def ccf_paths(*envs: Mapping[str, str]) -> list[Path]:
    """The calibration folders of ``SAS_CCFPATH``, from the first environment that sets it."""
    paths = next((e["SAS_CCFPATH"] for e in envs if e.get("SAS_CCFPATH")), "")
    return [Path(p) for p in paths.split(os.pathsep) if p]


def calibration_stale(layout: ArchiveLayout, cifbuild: SasCall, folders: list[Path]) -> str | None:
    """Why the observation's ccf.cif must be rebuilt (a vanished CCF, newer calibration), or None.

    When the rebuilt index lists another calibration set, its token changes and everything
    downstream is reprocessed too.
    """
    return ccf_stale_reason(layout.ccf(cifbuild.obsid), folders,
                            analysis_now=cifbuild.extra.get("analysis_date", "now") == "now")


def _stale_ccf(call: SasCall, ctx: ObsContext) -> bool:
    """True for a cifbuild whose calibration index must be rebuilt (:func:`calibration_stale`)."""
    if call.step != "cif_build":
        return False
    reason = calibration_stale(ctx.layout, call, ccf_paths(ctx.extra_env, os.environ))
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


def _record(manifest: Manifest, result: SasResult, ctx: ObsContext, attempt: int,
            remade: StepRecord | None = None) -> StepRecord:
    """Record ``result``; what was made from the products it replaced is stale from now on
    (:func:`~daxa_xmm.pipeline.identity.mark_superseded`), in the same update, so no reader sees both ok.
    A call that remade (or modified again) what the storage policy removed (``remade``: its
    record before) keeps the identity it had, when it made it with the same fingerprint."""
    rec = record_result(manifest, result, ctx.sas_version, attempts=attempt, facts=_facts(result))
    if remade is not None and rec.status == "ok" and remade.status == "ok" and remade.fingerprint == rec.fingerprint:
        rec = manifest.put(rec.model_copy(update={"identity": record_token(remade)}))
    superseded = mark_superseded(manifest)
    if superseded:
        log.info("%s: %d product(s) made from what %s [%s] replaced are stale: %s", ctx.obsid, len(superseded),
                 rec.step, rec.unit, ", ".join(superseded[:4]) + (" ..." if len(superseded) > 4 else ""))
    return rec


def run_call_blocking(call: SasCall, ctx: ObsContext, attempt: int = 1) -> CallOutcome:
    """Run (or skip) one call; return what it left.

    A full disk, seen by the SAS task or by our own writes (logs, manifest, products),
    stops the command line's run at once (:func:`daxa_xmm.sas.interrupt.stop_for`): every later
    call would fail the same way.

    Raises:
        SasTaskError: (or a subclass) when the call failed; ``transient`` says whether a
            retry may help.
        DiskFull: the disk of the products (or the quota) is full.
        StepSkipped: when the step is not selected and nothing reusable exists.
    """
    try:
        return _run_call(call, ctx, attempt)
    except DiskFull as exc:
        stop_if_disk_full(exc, ctx.layout, ctx.obsid)
        raise
    except OSError as exc:
        if not stop_if_disk_full(exc, ctx.layout, ctx.obsid):
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        raise DiskFull(f"{exc.strerror}{where}", task=call.task, unit=call.unit) from exc


def stop_if_disk_full(exc: BaseException, layout: ArchiveLayout, obsid: str) -> bool:
    """When ``exc`` says the disk is full, stop the command line's run (no later call would
    fare better) with one message naming where; True if it did."""
    if not is_disk_full(exc):
        return False
    interrupt.stop_for(f"the disk is full (ObsID {obsid}: {exc}); free space under {layout.out_root} "
                       f"and run the same command again to resume")
    return True


def _run_call(call: SasCall, ctx: ObsContext, attempt: int) -> CallOutcome:
    store = ctx.store()
    step = pipeline_step(call.step)
    forced = step in ctx.force or _stale_ccf(call, ctx)
    selected = ctx.steps is None or step in ctx.steps
    if not forced and store.is_up_to_date(call, ctx.sas_version):
        rec = store.get(call.unit, call.step)
        products = rec.products if rec is not None else []
        unusable = rec.message if rec is not None and rec.status == "data_quality" else ""
        return CallOutcome(_token(store, call), True, tuple(str(p) for p in products), unusable)
    if not selected and not forced:
        if store.mark_stale(call, STALE_MESSAGE) is not None:
            raise StepSkipped(f"{call.step} [{call.unit}]: step not selected; its products are stale", stale=True)
        raise StepSkipped(f"{call.step} [{call.unit}]: step not selected and no up-to-date products to reuse")
    snapshot = store.snapshot()
    removed = removed_inputs(snapshot, call)
    if removed:
        raise InputsRemoved(f"{call.step} [{call.unit}]: reads {', '.join(p.name for p in removed[:3])}, removed by the "
                            "storage policy; remaking it first", removed)
    gone = missing_leftovers(snapshot, call)
    if gone:
        raise LeftoversGone(f"{call.step} [{call.unit}]: {call.reads_cwd_of} must be redone first; "
                            f"{', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''} gone from {call.cwd}")
    if call.placed_from is not None:  # no SAS task: a copy, which holds no SAS slot
        result = place(call)
    else:
        result = run_sas(call, log_dir=ctx.layout.logs_dir(ctx.obsid), extra_env=ctx.extra_env, slot=ctx.slots())
    before = store.get(call.unit, call.step) if ctx.remaking else None
    store.update(lambda m: _record(m, result, ctx, attempt, before))
    raise_for_result(result)
    unusable = result.message if result.status == "data_quality" else ""
    return CallOutcome(_token(store, call), False, tuple(str(p) for p in result.products), unusable)


#: Environment variables a SAS call needs that a Dask worker may not have: passed along.
_FORWARD_ENV = ("PATH", "SAS_DIR", "SAS_PATH", "SAS_CCFPATH", "LD_LIBRARY_PATH", "PYTHONPATH")


def slots_root() -> Path:
    """Where the slot files live that cap SAS processes on this machine, for every run.

    Shared by all flow runs of this user on a machine (not per archive), so two runs
    started at once still hold ``num_cores`` together. ``DAXA_XMM_SLOTS_DIR`` overrides it.
    """
    default = Path(tempfile.gettempdir()) / f"daxa-xmm-slots-{os.getuid()}"
    return Path(os.environ.get("DAXA_XMM_SLOTS_DIR", default))


def observation_context(obsid: str, config: ProcessingConfig, layout: ArchiveLayout, sas_version: str) -> ObsContext:
    """The ObsContext every call of ``obsid`` gets in this run."""
    return ObsContext(
        layout=layout,
        obsid=obsid,
        sas_version=sas_version,
        num_cores=config.num_cores,
        slots_root=slots_root(),
        steps=None if config.steps is None else frozenset(config.steps),
        force=frozenset(config.force),
        extra_env={k: os.environ[k] for k in _FORWARD_ENV if k in os.environ},
    )
