"""DAXA's step functions, by name, that run SAS: a DAXA notebook works after one import.

``from flows.daxa_steps import Archive, XMMPointed, cif_build, odf_ingest, epchain, ...`` then,
as in DAXA, ``arch = Archive("name", XMMPointed(odf_folder=...))``, ``cif_build(arch)``, ``odf_ingest(arch)``, ``epchain(arch, timeout=2 * u.h)`` ...
and ``arch.process_success``, ``arch.process_errors``, ``arch.process_logs``.

Each function takes DAXA's arguments (validated and planned by :mod:`daxa_xmm.daxa.plans`, which
still plans without running) and runs its step over the archive's units as one Prefect
flow run, ``daxa-<step>``: one task per SAS call, through the same task as the archive flow
(retries of transient failures only, the timeout that kills the SAS process group, the
per-host SAS slots, the manifest and resume). A unit whose prerequisite failed is recorded
and skipped; the others run. The calls get the fingerprints the archive flow would give
them (daxa_xmm.daxa.step_inputs), so neither redoes what the other made. With no
``PREFECT_API_URL`` Prefect runs on its temporary local backend, quietly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from astropy.units import Quantity
from prefect import flow

from daxa_xmm.config import ProcessingConfig, load_config
from daxa_xmm.daxa import plans as daxa_plans
from daxa_xmm.daxa.archive import Archive
from daxa_xmm.daxa.mission import XMMPointed
from daxa_xmm.daxa.plan_support import stage_input
from daxa_xmm.daxa.plans import NUM_CORES, parse_emanom_out, parse_odf_sum
from daxa_xmm.daxa.records import check_prerequisite, daxa_key, save_step_info
from daxa_xmm.daxa.step_inputs import UnitInputs, step_inputs
from daxa_xmm.errors import ConfigError, DaxaXmmError
from daxa_xmm.pipeline.locks import ObservationBusy, observation_lock
from daxa_xmm.pipeline.manifest import Manifest
from daxa_xmm.pipeline.observation_plan import ObservationPlan, observation_plan
from daxa_xmm.pipeline.observation_run import Chain, Driver, short
from daxa_xmm.pipeline.stages import DAXA_STEPS
from daxa_xmm.pipeline.step_run import ObsContext, observation_context
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import SasCall, StepPlan
from daxa_xmm.sas.environment import detect_sas
from daxa_xmm.steps.spec import StageInput
from flows import api_retry
from flows.cli import quiet_prefect
from flows.process_archive import run_archive
from flows.process_observation import prefect_calls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    """Calls that run in order (one unit's step; an instrument's merges), and what they read."""

    obsid: str
    key: str
    calls: tuple[SasCall, ...]
    tokens: tuple[str, ...]


class _Inputs:
    """Per observation: the manifest as it was before the step, and the observation's plan."""

    def __init__(self, archive: Archive, obsid: str) -> None:
        self.archive, self.obsid = archive, obsid
        self.manifest: Manifest = archive.manifest(obsid)
        self._plan: ObservationPlan | None = None

    def plan(self, step: str) -> ObservationPlan:
        """The observation's plan, made once (its units only once odfingest has run)."""
        if step in ("cif_build", "odf_ingest"):
            return observation_plan(self._input())
        if self._plan is None:
            self._plan = observation_plan(self._input(), self.archive.units(self.obsid))
        return self._plan

    def _input(self) -> StageInput:
        return dataclasses.replace(stage_input(self.archive, self.obsid, None), planning=True)

    def of(self, step: str, label: str) -> UnitInputs:
        inst = daxa_key(label)[len(self.obsid):] if step in ("merge_subexposures", "generate_images_expmaps") else None
        return step_inputs(self.plan(step), self.manifest, self.archive.layout, step, label, inst)


def _extra_key(label: str) -> tuple[str, str | None]:
    """DAXA's key of a plan's unit label, and the part (merge kind, band) it names, if any."""
    key = daxa_key(label)
    return key, (label[len(key) + 1:] or None)


def _prepare(archive: Archive, step: str, plan: StepPlan, contexts: dict[str, ObsContext],
             configuration: dict[str, Any]) -> list[_Job]:
    """The jobs to run, observation by observation; one that cannot be prepared (an
    unreadable file) is noted in its own records and the others go on."""
    jobs: list[_Job] = []
    for obsid in [o for o in archive.obsids if o in contexts]:
        try:
            jobs += _prepare_observation(archive, step, plan, contexts[obsid], configuration)
        except (DaxaXmmError, OSError, ValueError) as exc:
            log.warning("%s: %s: %s", step, obsid, exc)
            save_step_info(archive.layout, obsid, step, {}, {obsid: f"{type(exc).__name__}: {exc}"}, configuration)
    return [j for j in jobs if j.calls]


def _prepare_observation(archive: Archive, step: str, plan: StepPlan, ctx: ObsContext,
                         configuration: dict[str, Any]) -> list[_Job]:
    """One observation's jobs; records what cannot run (a failed prerequisite, a unit that
    could not be planned) and notes the step's extra info beside the manifest."""
    obsid = ctx.obsid
    extra_info: dict[str, dict[str, Any]] = {}
    plan_errors: dict[str, str] = {}
    plans = plan.extra_info.get(obsid, {})
    if "error" in plans:  # the observation could not be planned (no summary...)
        plan_errors[obsid] = str(plans["error"])
    inputs = _Inputs(archive, obsid)
    runnable: list[_Job] = []
    for label, calls in plan.commands.get(obsid, {}).items():
        info = dict(plans.get(label, {}))
        key, part = _extra_key(label)
        if part is None:
            extra_info[key] = info
        else:
            extra_info.setdefault(key, {})[part] = info
        if "error" in info:
            plan_errors[key] = str(info["error"])
            continue
        needs = inputs.of(step, label)
        if not needs.ready:
            plan_errors.setdefault(key, f"not run: {needs.why}")
            for call in calls:
                ctx.store().mark(call, "upstream_failed", f"not run: {needs.why}", sas_version=ctx.sas_version)
        else:
            # an instrument's merged lists are one job each, side by side as in the archive flow,
            # reported under the instrument's key
            runnable.append(_Job(obsid, key if step == "merge_subexposures" else label, tuple(calls), needs.tokens))
    save_step_info(archive.layout, obsid, step, extra_info, plan_errors, configuration)
    return runnable


@contextlib.contextmanager
def _locked(archive: Archive, obsids: set[str]) -> Iterator[set[str]]:
    """Hold the observations' locks (as the archive flow does); yields the busy ones, which
    another run is processing: this step leaves them alone, with a warning naming them."""
    busy: set[str] = set()
    with contextlib.ExitStack() as stack:
        for obsid in sorted(obsids):
            try:
                stack.enter_context(observation_lock(archive.layout.obs_dir(obsid)))
            except ObservationBusy as exc:
                log.warning("%s: left alone: %s", obsid, exc)
                busy.add(obsid)
        yield busy


@flow(name="daxa-step", flow_run_name="daxa-{step}", validate_parameters=False)
async def daxa_step_flow(step: str, jobs: list[_Job], contexts: dict[str, ObsContext], config: ProcessingConfig,
                         show_progress: bool = False, message: str = "") -> dict[str, str]:
    """Run every job of one DAXA step; returns ``{key: "ok" | why it stopped}``."""
    bar = _Bar(message or step, len(jobs)) if show_progress else None
    gate = asyncio.Semaphore(max(2, 2 * config.num_cores))  # bounded task-run creation
    driver = Driver(prefect_calls(config))

    async def one(job: _Job) -> tuple[str, str]:
        async with gate:
            try:
                await Chain(contexts[job.obsid], driver, job.tokens).run(job.calls)
                return job.key, "ok"
            except Exception as exc:  # recorded in the manifest; the other units go on
                return job.key, short(exc)
            finally:
                if bar is not None:
                    bar.advance()

    try:
        results: dict[str, str] = {}
        for key, why in await asyncio.gather(*(one(j) for j in jobs)):
            if results.get(key, "ok") == "ok":  # an instrument's merged lists share its key: the first failure tells
                results[key] = why
        return results
    finally:
        if bar is not None:
            bar.stop()


class _Bar:
    """DAXA's progress bar: one line per step, advanced as units finish (rich, as the CLI)."""

    def __init__(self, description: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._rich = Progress(TextColumn("XMM Pointed - {task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn())
        self._task = self._rich.add_task(description, total=total)
        self._rich.start()

    def advance(self) -> None:
        self._rich.advance(self._task)

    def stop(self) -> None:
        self._rich.stop()


def run_step(archive: Archive, step: str, plan: StepPlan, configuration: dict[str, Any] | None = None) -> dict[str, str]:
    """Run a planned step over the archive (what every step function does after planning);
    ``configuration``: the arguments it was called with, for ``process_configurations``."""
    quiet_prefect()  # a notebook's Prefect: no telemetry, no chatter (the records say what happened)
    api_retry.install()
    sas = detect_sas(heasoft=step == "emchain")
    if sas.version.tuple != archive.sas_version.tuple:
        raise ConfigError(f"the archive plans for SAS {archive.sas_version}, but the SAS set up here is {sas.version}")
    layout = archive.layout
    config = ProcessingConfig(archive=layout.raw_root, out=layout.out_root, num_cores=plan.num_cores)
    contexts = {o: observation_context(o, config, layout, sas.version.raw) for o in archive.obsids}
    with _locked(archive, set(archive.obsids)) as busy:  # a busy observation is left to its run
        jobs = _prepare(archive, step, plan, {o: c for o, c in contexts.items() if o not in busy}, configuration or {})
        if not jobs:
            return {}
        coro = daxa_step_flow(step, jobs, contexts, config, not plan.disable_progress, plan.process_message)
        return _run_stoppable(coro)


def _run_stoppable(coro: Coroutine[Any, Any, dict[str, str]]) -> dict[str, str]:
    """Run the step's flow on its own thread and event loop (a notebook's loop is busy).

    Ctrl-C (KeyboardInterrupt) stops it as the command line's does: no new SAS call starts,
    the running ones are ended and recorded ``interrupted``, then the KeyboardInterrupt goes
    on to the caller. A second Ctrl-C while they are being ended gives up waiting.
    """
    interrupt.reset()  # a stop asked of an earlier step is not this one's
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="daxa-step")
    future = pool.submit(asyncio.run, coro)
    try:
        try:
            return future.result()
        except KeyboardInterrupt:
            interrupt.request_stop()
            log.warning("stopping: no new SAS call starts, running ones are ended; Ctrl-C again to stop waiting")
            with contextlib.suppress(Exception):  # stopped: the records say how far it got
                future.result()
            raise
    finally:
        pool.shutdown(wait=False)


def _as_json(value: Any) -> Any:
    """An argument as the records keep it on disk: a Quantity as its text, a tuple as a list."""
    if isinstance(value, Quantity):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def _running(plan_step: Callable[..., StepPlan]) -> Callable[..., None]:
    """The DAXA function of the same name and arguments as ``plan_step``, that runs it."""
    step = plan_step.__name__

    @functools.wraps(plan_step)
    def run(obs_archive: Archive, *args: Any, **kwargs: Any) -> None:
        if not isinstance(obs_archive, Archive):
            raise ConfigError(f"obs_archive must be a daxa_xmm Archive, got {type(obs_archive).__name__}")
        check_prerequisite(obs_archive.layout, obs_archive.obsids, step)
        plan = plan_step(obs_archive, *args, **kwargs)  # first: it checks the arguments
        called = inspect.signature(plan_step).bind(obs_archive, *args, **kwargs)
        called.apply_defaults()
        run_step(obs_archive, step, plan, {k: _as_json(v) for k, v in called.arguments.items() if k != "obs_archive"})

    # resolved, so that help() shows DAXA's ``process_unscheduled: bool = True``, not the strings
    # of ``from __future__ import annotations``
    signature = inspect.signature(plan_step, eval_str=True).replace(return_annotation=None)
    run.__annotations__ = {**{n: p.annotation for n, p in signature.parameters.items()}, "return": None}
    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__module__ = __name__
    doc = plan_step.__doc__ or ""
    run.__doc__ = ("Run" + doc[len("Plan"):] if doc.startswith("Plan") else doc) + (
        "\n\n    Runs as the Prefect flow run ``daxa-" + step + "``; the outcome is in the archive's records"
        " (``process_success``...). ``daxa_xmm.daxa.plans." + step + "`` plans without running.\n")
    return run


cif_build = _running(daxa_plans.cif_build)
odf_ingest = _running(daxa_plans.odf_ingest)
epchain = _running(daxa_plans.epchain)
emchain = _running(daxa_plans.emchain)
rgs_events = _running(daxa_plans.rgs_events)
rgs_angles = _running(daxa_plans.rgs_angles)
cleaned_rgs_event_lists = _running(daxa_plans.cleaned_rgs_event_lists)
emanom = _running(daxa_plans.emanom)
espfilt = _running(daxa_plans.espfilt)
cleaned_evt_lists = _running(daxa_plans.cleaned_evt_lists)
merge_subexposures = _running(daxa_plans.merge_subexposures)
generate_images_expmaps = _running(daxa_plans.generate_images_expmaps)



def full_process_xmm(obs_archive: Archive, lo_en: Quantity | None = None, hi_en: Quantity | None = None,
                     process_unscheduled: bool = True, find_mos_anom_state: bool = False,
                     num_cores: int = NUM_CORES, timeout: Quantity | None = None) -> None:
    """DAXA's one-line solution (``daxa.process.simple.full_process_xmm``): every step over
    the archive with its default settings, as one run of the archive flow.

    Unlike DAXA's, which calls the twelve step functions one after another (each a barrier
    over the whole archive), each observation goes through its steps as soon as it can, and
    a slow one holds no other back. The records of every step are the archive's, under DAXA's
    keys, as after the step functions. emanom runs on MOS whatever ``find_mos_anom_state``
    says (it only reads the lists); only with ``find_mos_anom_state`` does the cleaning keep
    just the CCDs it accepts, as in DAXA.

    Args:
        obs_archive: the archive to process (its ObsIDs and instruments).
        lo_en, hi_en: the cleaned lists' energy filter, both or neither; None (DAXA's
            default): no energy filter.
        process_unscheduled: also process unscheduled sub-exposures.
        find_mos_anom_state: filter MOS CCDs by emanom's verdict.
        num_cores: SAS processes at once.
        timeout: time limit of each SAS call (None: the run's default, 2 h; at least 1 s).
    """
    quiet_prefect()
    if not isinstance(obs_archive, Archive):
        raise ConfigError(f"obs_archive must be a daxa_xmm Archive, got {type(obs_archive).__name__}")
    layout = obs_archive.layout
    settings: dict[str, Any] = dict(
        archive=layout.raw_root, out=layout.out_root, obsids=list(obs_archive.obsids),
        instruments=list(obs_archive.instruments), process_unscheduled=process_unscheduled,
        num_cores=num_cores, clean={"lo_en": lo_en, "hi_en": hi_en, "filt_mos_anom_state": find_mos_anom_state})
    if timeout is not None:
        settings["timeout"] = timeout
    run_archive(load_config(None, **settings))


__all__ = ["Archive", "XMMPointed", "NUM_CORES", "parse_odf_sum", "parse_emanom_out", "run_step", "daxa_step_flow",
           "full_process_xmm", *DAXA_STEPS]
