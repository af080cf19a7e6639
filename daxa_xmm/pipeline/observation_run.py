"""One observation from ODF to cleaned, merged lists and images, run by whoever runs its calls.

cifbuild -> odfingest -> summary -> (PN, MOS and RGS chains, one per sub-exposure, all at
once) -> per instrument: merge -> images and exposure maps per band.

The jobs are those of the observation's plan (:mod:`daxa_xmm.pipeline.observation_plan`),
each a plain coroutine that awaits the jobs it reads, then its calls in order: a unit waits
only for what it reads, with no barrier between units or instruments. A failed step stops
only what reads it; that is recorded as ``upstream_failed`` and the rest of the observation
goes on. A data-quality outcome (daxa_xmm.sas.quality) stops what reads it too but fails
nothing: what it feeds is ``skipped``, an instrument's merge goes on with its other units.

Nothing here imports Prefect: a :class:`Driver` says how a call runs. The archive flow's
subflow (flows/process_observation.py) runs each call as a Prefect task; a local run's head
start (:mod:`daxa_xmm.pipeline.head_start`) runs whole observations the same way, with the core's
own retries, while Prefect's temporary server starts.
"""

from __future__ import annotations

__all__ = ["ObservationOutcome", "Driver", "RunCall", "Watch", "QUIET", "Chain", "run_observation", "retrying_calls", "short"]

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DataQualityStop, is_disk_full
from daxa_xmm.odf.summary import read_observation_record
from daxa_xmm.odf.unpack import repoint_summary, unpack_odf
from daxa_xmm.pipeline.identity import with_upstream
from daxa_xmm.pipeline.manifest import StepStatus
from daxa_xmm.pipeline.observation_plan import Job, ObservationPlan, observation_plan
from daxa_xmm.pipeline.stages import by_unit, call_priorities, longest_first, pipeline_step, stages_for
from daxa_xmm.pipeline.step_run import (
    STALE_MESSAGE,
    CallOutcome,
    InputsRemoved,
    LeftoversGone,
    ObsContext,
    StepSkipped,
    run_call_blocking,
)
from daxa_xmm.pipeline.walk import observation_input, select_observation_units
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.runner import is_transient
from daxa_xmm.sas.version import parse_sas_version

log = logging.getLogger(__name__)


class ObservationOutcome(BaseModel):
    """What happened to one observation, for the archive report."""

    obsid: str
    status: Literal["ok", "partial", "failed", "interrupted"]
    message: str = ""
    units: list[str] = []
    failed: list[str] = []
    duration_s: float = 0.0
    busy: bool = False  # another run holds the observation: the report reads its manifest


#: Runs (or skips) one call and returns what it left; raises as run_call_blocking does.
RunCall = Callable[[SasCall, ObsContext], Awaitable[CallOutcome]]


class Watch(Protocol):
    """Who is told as observations and calls start and end (the command line's progress bars)."""

    def observation_started(self, obsid: str) -> None: ...
    def observation_finished(self, obsid: str) -> None: ...
    def started(self, obsid: str, call: SasCall) -> None: ...
    def finished(self, obsid: str, call: SasCall) -> None: ...


class _Quiet:
    def observation_started(self, obsid: str) -> None:
        pass

    def observation_finished(self, obsid: str) -> None:
        pass

    def started(self, obsid: str, call: SasCall) -> None:
        pass

    def finished(self, obsid: str, call: SasCall) -> None:
        pass


#: Nobody is told.
QUIET: Watch = _Quiet()


@dataclass(frozen=True)
class Driver:
    """How an observation's calls run: ``run_call`` (a Prefect task, or the core's
    :func:`retrying_calls`), and who is told (``watch``)."""

    run_call: RunCall
    watch: Watch = QUIET


def retrying_calls(config: ProcessingConfig) -> RunCall:
    """Each call by the core in a thread, tried again on a transient failure as the flow's
    tasks are: ``config.retries`` times, the delay doubling from ``config.retry_delay``
    (without Prefect's jitter). A SAS error is not tried again; a stop request ends it."""

    def blocking(call: SasCall, ctx: ObsContext) -> CallOutcome:
        delay = config.retry_delay_s()
        for attempt in range(1, config.retries + 2):
            try:
                return run_call_blocking(call, ctx, attempt)
            except Exception as exc:
                if attempt > config.retries or not is_transient(exc) or interrupt.stop_requested():
                    raise
                log.warning("%s [%s]: attempt %d failed (%s); trying again in %.0f s", call.step, call.unit, attempt,
                            short(exc), delay)
                interrupt.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    async def run(call: SasCall, ctx: ObsContext) -> CallOutcome:
        return await asyncio.to_thread(blocking, call, ctx)

    return run


#: Remakes the given removed products (the storage policy's) before the call that reads them runs.
Remake = Callable[[Sequence[Path]], Awaitable[None]]


class Chain:
    """Runs calls in order for one unit, carrying the identity of what each call read."""

    def __init__(self, ctx: ObsContext, driver: Driver, tokens: Sequence[str] = (),
                 remake: Remake | None = None) -> None:
        self.ctx, self.driver = ctx, driver
        self.tokens: list[str] = list(tokens)
        self.priority: dict[tuple[str, str], float] = {}  # (unit, step): the work behind the call
        self.remake = remake  # how products the storage policy removed are made again

    async def run(self, calls: Sequence[SasCall]) -> list[str]:
        """Run ``calls`` in order; each depends on the previous ones of this chain.

        A call whose inputs in a shared working folder are gone (the OOT epchain run's
        intermediates, rgsproc's merged list) makes the chain redo the calls from the one
        that started that folder, forced, and then go on. A call that reads products the
        storage policy removed has them remade (:attr:`remake`), then runs: the calls
        before it in the chain, done already, are not run twice.
        """
        base = list(self.tokens)
        made: list[str] = []  # token of calls[k] at index k
        produced: list[str] = []
        forced_until = -1
        remade_for = -1
        i = 0
        while i < len(calls):
            call = with_upstream(calls[i], base + made[:i])
            ctx = dataclasses.replace(self.ctx, priority=self.priority.get((call.unit, call.step), 0.0))
            if i < forced_until:
                ctx = dataclasses.replace(ctx, force=ctx.force | {pipeline_step(call.step)})
            self.driver.watch.started(self.ctx.obsid, call)
            try:
                out = await self.driver.run_call(call, ctx)
            except LeftoversGone as exc:
                start = _folder_start(calls, i)
                if forced_until >= 0 or start == i:
                    self.fail_rest(calls[i + 1 :], exc)
                    raise
                log.warning("%s; redoing from %s", exc, calls[start].step)
                forced_until, i = i, start
                del made[start:]
                continue
            except InputsRemoved as exc:  # the call did not run: remade, then it runs
                if self.remake is None or remade_for == i:
                    self.fail_rest(calls[i + 1 :], exc)
                    raise
                remade_for = i
                try:
                    await self.remake(exc.paths)
                except Exception:
                    self.fail_rest(calls[i:], exc)
                    raise
                continue
            except Exception as exc:
                self.fail_rest(calls[i + 1 :], exc)
                raise
            finally:
                self.driver.watch.finished(self.ctx.obsid, call)
            made.append(out.token)
            produced.extend(out.products)
            if out.quality:  # a data-quality outcome: nothing it feeds can be made
                self.fail_rest(calls[i + 1 :], stop := DataQualityStop(out.quality))
                raise stop
            i += 1
        self.tokens = base + made
        return produced

    async def run_work(self, work: Sequence[SasCall]) -> None:
        """Run a stage's work: each unit's part as one chain from what came before the stage,
        the units side by side (:func:`daxa_xmm.pipeline.stages.by_unit`); the tokens after it are
        theirs in the work's order. A failure stops its own chain, then the stage."""
        groups = by_unit(work)
        if len(groups) == 1:
            await self.run(work)
            return
        base, subs = list(self.tokens), [Chain(self.ctx, self.driver, self.tokens, self.remake) for _ in groups]
        for sub in subs:
            sub.priority = self.priority
        results = await asyncio.gather(*(sub.run(g) for sub, g in zip(subs, groups, strict=True)),
                                       return_exceptions=True)
        self.tokens = base + [t for sub in subs for t in sub.tokens[len(base):]]
        bad = [r for r in results if isinstance(r, BaseException)]
        if bad:
            raise bad[0]

    def fail_rest(self, calls: Sequence[SasCall], cause: BaseException) -> None:
        """Record the calls that cannot run because something they read failed (or was not selected, or is unusable)."""
        store = self.ctx.store()
        status: StepStatus = ("skipped" if isinstance(cause, (StepSkipped, DataQualityStop))
                  else "interrupted" if isinstance(cause, interrupt.Interrupted) else "upstream_failed")
        try:
            for call in calls:
                # a partial run (--steps) leaves what it did not select: older products are stale
                if isinstance(cause, StepSkipped) and store.mark_stale(call, STALE_MESSAGE) is not None:
                    continue
                store.mark(call, status, f"not run: {short(cause)}", sas_version=self.ctx.sas_version)
        except OSError as exc:  # a full disk: what did not run has no record, and runs next time
            if not is_disk_full(exc):
                raise
            log.warning("%s: %d call(s) not recorded as not run: %s", self.ctx.obsid, len(calls), short(exc))


@dataclass(frozen=True)
class _Done:
    """What a job of the plan left: the tokens of what it and all it read made (None when it
    did not finish), and the exception that stopped it (``own``: its own failure, not one of
    what it reads; with tokens: a partial run left its products stale, which is no failure)."""

    tokens: list[str] | None
    error: BaseException | None = None
    own: bool = False


class _PlanRun:
    """Runs the jobs of one observation's plan (:mod:`daxa_xmm.pipeline.observation_plan`),
    each as soon as what it reads is done: no barrier between units or instruments. A job
    whose input failed records its calls as not run, with the failure that stopped it."""

    def __init__(self, ctx: ObsContext, driver: Driver) -> None:
        self.ctx, self.driver = ctx, driver
        self.done: list[asyncio.Task[_Done]] = []
        self.remaking = asyncio.Lock()

    async def run(self, plan: ObservationPlan) -> list[_Done]:
        """Run the jobs of ``plan`` not run yet (a plan grows from its observation's stages)."""
        for i in range(len(self.done), len(plan.jobs)):
            self.done.append(asyncio.ensure_future(self._job(plan, i)))
        return list(await asyncio.gather(*self.done))

    async def _job(self, plan: ObservationPlan, i: int) -> _Done:
        job = plan.jobs[i]
        got = [await self.done[r] for r in job.reads]
        lost = [(plan.jobs[r], d) for r, d in zip(job.reads, got, strict=True) if d.tokens is None]
        chain = Chain(self.ctx, self.driver)
        survivor = job.surviving([j for j, _ in lost])
        if survivor is None:
            cause = lost[0][1].error or RuntimeError("not run")
            if job.over_units and not all(isinstance(d.error, StepSkipped) for _, d in lost):
                # none of its units is usable, or some failed
                unusable = all(isinstance(d.error, DataQualityStop) for _, d in lost)
                cause = (DataQualityStop if unusable else RuntimeError)(
                    f"no {job.input.the_inst} sub-exposure was {'usable' if unusable else 'processed'}")
            chain.fail_rest(job.planned(), cause)
            asked = self._asked_not_done(job.planned()) if isinstance(cause, StepSkipped) else []
            if asked:  # a partial run asked for this, and what it reads was neither asked for nor made
                log.warning("%s: %s", _group(job), blocked := _cannot_run(asked, cause))
                return _Done(None, blocked, own=True)
            return _Done(None, cause)
        job = survivor  # an instrument's stage goes on with the units whose chains finished
        chain.tokens = [t for d in got for t in d.tokens or ()]
        chain.remake = functools.partial(self._remake, plan, i)
        try:
            try:
                calls = job.build()
            except Exception as exc:  # what it reads of the calls before it is unusable
                chain.fail_rest(job.planned(), exc)
                raise
            chain.priority.update(call_priorities(job.scope, job.input, job.position, calls))
            await chain.run_work(calls)
        except Exception as exc:
            if _left_stale(exc):
                return _Done(chain.tokens, exc)
            if isinstance(exc, DataQualityStop):  # no failure (the runner logged why); what reads it is not run
                return _Done(None, exc)
            if isinstance(exc, StepSkipped):
                if not (asked := self._asked_not_done(job.planned())):
                    return _Done(None, exc)  # a partial run stopped past the steps it was asked for: no failure
                exc = _cannot_run(asked, exc)
            log.warning("%s: %s stopped: %s", _group(job), job.stage.name, short(exc))
            return _Done(None, exc, own=True)
        return _Done(chain.tokens)

    def _asked_not_done(self, calls: Sequence[SasCall]) -> list[SasCall]:
        """The calls of ``calls`` a partial run (``--steps``, ``--force``) asked for that have
        no usable record: what it was asked to make and did not."""
        steps, store = _asked_steps(self.ctx), self.ctx.store()
        asked = [c for c in calls if steps is None or pipeline_step(c.step) in steps]
        return [c for c in asked if (rec := store.get(c.unit, c.step)) is None or rec.status not in ("ok", "data_quality")]

    async def _remake(self, plan: ObservationPlan, i: int, paths: Sequence[Path]) -> None:
        """Remake ``paths`` for job ``i``: run again, forced and keeping their identity
        (:attr:`ObsContext.remaking`), the jobs before it that made them or modified them."""
        async with self.remaking:  # two jobs reading one removed list remake it once
            wanted = {str(p) for p in paths if not p.exists()}
            if wanted:
                await self._remake_jobs(plan, i, wanted)

    async def _remake_jobs(self, plan: ObservationPlan, i: int, wanted: set[str]) -> None:
        for k in plan.upstream(i):
            job = plan.jobs[k]
            calls = job.planned()
            if not any(str(o.dest) in wanted or (o.kind == "modify" and o.name in wanted) for c in calls for o in c.outputs):
                continue
            log.info("%s: remaking %s for %s", self.ctx.obsid, job.stage.name, plan.jobs[i].stage.name)
            ctx = dataclasses.replace(self.ctx, force=self.ctx.force | {job.stage.name}, remaking=True)
            before = [t for r in job.reads for t in (self.done[r].result().tokens or ())]
            await Chain(ctx, self.driver, before).run_work(job.build())


def _group(job: Job) -> str:
    """What the report names as failed for a job: its unit, or its instrument's stages."""
    si = job.input
    if job.scope == "unit":
        return si.the_unit.label
    if job.scope == "observation":
        return si.obsid
    return f"{si.obsid}{si.the_inst}-{'/'.join(s.name for scope in ('instrument', 'band') for s in stages_for(scope, si))}"


def _cannot_run(asked: Sequence[SasCall], skipped: BaseException) -> RuntimeError:
    """Why a partial run could not make what it was asked for: a step it reads was not asked for and never made."""
    return RuntimeError(f"{asked[0].step} [{asked[0].unit}] cannot run: {short(skipped)}")


def _asked_after(ctx: ObsContext, head: ObservationPlan) -> list[str]:
    """The steps a partial run asked for (``--steps``, ``--force``) that come after the
    observation's own stages of ``head``."""
    steps = _asked_steps(ctx)
    return [] if steps is None else sorted(steps - {pipeline_step(c.step) for job in head.jobs for c in job.planned()})


def _asked_steps(ctx: ObsContext) -> frozenset[str] | None:
    """The pipeline steps a partial run asked for (``--steps`` and ``--force``); None: not a partial run."""
    return None if ctx.steps is None else ctx.steps | ctx.force


def _left_stale(exc: BaseException) -> bool:
    """A partial run (``--steps``) stopped at a step it was not asked to run, whose older
    products it marked stale: what was asked is done, nothing failed."""
    return isinstance(exc, StepSkipped) and exc.stale


def _folder_start(calls: Sequence[SasCall], i: int) -> int:
    """Index of the call that started (cleaned) the working folder ``calls[i]`` reuses."""
    for k in range(i - 1, -1, -1):
        if calls[k].cwd == calls[i].cwd and calls[k].clean_cwd:
            return k
    return i


def short(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for logs and reports."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def run_observation(obsid: str, config: ProcessingConfig, ctx: ObsContext, driver: Driver) -> ObservationOutcome:
    """Process one ObsID end to end; never raises for a SAS or data problem.

    Returns:
        The outcome: ``ok`` when every selected unit and product was made, ``partial`` when
        some failed, ``failed`` when nothing past the summary could run.
    """
    t0 = time.time()
    layout = ctx.layout
    if interrupt.stop_requested():  # Ctrl-C or SIGTERM before this observation started
        return ObservationOutcome(obsid=obsid, status="interrupted", message="not started: the run was stopped")
    driver.watch.observation_started(obsid)
    try:
        try:
            odf_dir = await asyncio.to_thread(unpack_odf, layout, obsid)  # gzipped constituents, if any
            record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
            # a moved products folder took the unpacked constituents with it
            await asyncio.to_thread(repoint_summary, layout.summary(obsid, record.revolution), odf_dir)
            si = observation_input(layout, record, config, parse_sas_version(ctx.sas_version))
            run = _PlanRun(ctx, driver)
            head = observation_plan(si)
            stopped = next((d.error for d in await run.run(head) if d.error is not None and not _left_stale(d.error)), None)
            if isinstance(stopped, StepSkipped):  # a partial run: the summary it needs is not made
                later = _asked_after(ctx, head)
                if not later:
                    return ObservationOutcome(obsid=obsid, status="ok", message=f"partial run: {short(stopped)}",
                                              duration_s=time.time() - t0)
                raise RuntimeError(f"{', '.join(later)} cannot run: {short(stopped)}")
            if stopped is not None:
                raise stopped
            units = select_observation_units(si)
        except Exception as exc:  # a bad ODF or summary, or cifbuild/odfingest failed for good
            status = "interrupted" if isinstance(exc, interrupt.Interrupted) else "failed"
            return ObservationOutcome(obsid=obsid, status=status, message=short(exc), duration_s=time.time() - t0)

        # the longest chains start first: free SAS slots go to whoever asks first
        plan = observation_plan(si, longest_first(si, units))
        done = await run.run(plan)
        failed = list(dict.fromkeys(_group(job) for job, d in zip(plan.jobs, done, strict=True) if d.own))
        status = "ok" if not failed else ("failed" if len(failed) >= len(units) and units else "partial")
        if failed and interrupt.stop_requested():
            status = "interrupted"
        if not units:
            return ObservationOutcome(obsid=obsid, status="ok", message="no processable exposures", duration_s=time.time() - t0)
        message = "" if not failed else (f"stopped: {len(failed)} unit(s) not finished; run again to resume"
                                         if status == "interrupted" else f"{len(failed)} unit(s) failed")
        return ObservationOutcome(
            obsid=obsid,
            status=status,
            units=[u.label for u in units],
            failed=failed,
            message="; ".join(m for m in (message, ctx.store().quality_note()) if m),
            duration_s=time.time() - t0,
        )
    finally:
        driver.watch.observation_finished(obsid)
