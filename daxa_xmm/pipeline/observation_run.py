"""One observation from ODF to cleaned, merged lists and images, run by whoever runs its calls.

cifbuild -> odfingest -> summary -> (PN, MOS and RGS chains, one per sub-exposure, all at
once) -> per instrument: merge -> images and exposure maps per band.

Each chain is a plain coroutine awaiting its calls in order, so a unit waits only for what
it reads: no barrier between units or instruments. A failed step stops only its own chain;
what depended on it is recorded as ``upstream_failed`` and the rest of the observation goes
on. A data-quality outcome (daxa_xmm.sas.quality) stops its chain but fails nothing: what it feeds is ``skipped``.

Nothing here imports Prefect: a :class:`Driver` says how a call runs. The archive flow's
subflow (flows/process_observation.py) runs each call as a Prefect task; a local run's head
start (:mod:`daxa_xmm.pipeline.head_start`) runs whole observations the same way, with the core's
own retries, while Prefect's temporary server starts.
"""

from __future__ import annotations

__all__ = ["ObservationOutcome", "Driver", "RunCall", "Watch", "QUIET", "Chain", "run_observation", "retrying_calls", "short"]

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DataQualityStop, is_disk_full
from daxa_xmm.odf.models import Unit
from daxa_xmm.odf.summary import read_observation_record
from daxa_xmm.odf.unpack import repoint_summary, unpack_odf
from daxa_xmm.pipeline.identity import with_upstream
from daxa_xmm.pipeline.manifest import StepStatus
from daxa_xmm.pipeline.stages import (
    band_inputs,
    by_unit,
    call_priorities,
    calls_only,
    longest_first,
    pipeline_step,
    planned_work,
    stages_for,
    unit_input,
)
from daxa_xmm.pipeline.step_run import STALE_MESSAGE, CallOutcome, LeftoversGone, ObsContext, StepSkipped, run_call_blocking
from daxa_xmm.pipeline.walk import observation_input, select_observation_units
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.runner import is_transient
from daxa_xmm.sas.version import parse_sas_version
from daxa_xmm.steps.merge import place_single
from daxa_xmm.steps.spec import Copy, Scope, StageInput, Work

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


class Chain:
    """Runs calls in order for one unit, carrying the identity of what each call read."""

    def __init__(self, ctx: ObsContext, driver: Driver, tokens: Sequence[str] = ()) -> None:
        self.ctx, self.driver = ctx, driver
        self.tokens: list[str] = list(tokens)
        self.priority: dict[tuple[str, str], float] = {}  # (unit, step): the work behind the call

    async def run(self, calls: Sequence[SasCall]) -> list[str]:
        """Run ``calls`` in order; each depends on the previous ones of this chain.

        A call whose inputs in a shared working folder are gone (the OOT epchain run's
        intermediates, rgsproc's merged list) makes the chain redo the calls from the one
        that started that folder, forced, and then go on.
        """
        base = list(self.tokens)
        made: list[str] = []  # token of calls[k] at index k
        produced: list[str] = []
        forced_until = -1
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

    async def run_stages(self, scope: Scope, si: StageInput) -> None:
        """Run the table's ``scope`` stages for ``si`` in order, each built just before it
        runs (the cleaning reads emanom's verdict). On a failure the later stages' calls are
        recorded as not run, and the exception goes on."""
        todo = stages_for(scope, si)
        plan = replace(si, planning=True)
        for k, stage in enumerate(todo):
            try:
                try:
                    work = stage.build(si)
                except Exception as exc:  # what it reads of the calls before it is unusable
                    self.fail_rest(calls_only(stage.build(plan)), exc)
                    raise
                self.priority.update(call_priorities(scope, si, k, calls_only(work)))
                await self.run_work(work)
            except Exception as exc:
                self.fail_rest(calls_only([w for later in todo[k + 1:] for w in later.build(plan)]), exc)
                raise

    async def run_work(self, work: Sequence[Work]) -> None:
        """Run a stage's work: each unit's part as one chain from what came before the stage,
        the units side by side (:func:`daxa_xmm.pipeline.stages.by_unit`); the tokens after it are
        theirs in the work's order. A failure stops its own chain, then the stage."""
        groups = by_unit(work)
        if len(groups) == 1:
            return await self._run_in_order(work)
        base, subs = list(self.tokens), [Chain(self.ctx, self.driver, self.tokens) for _ in groups]
        for sub in subs:
            sub.priority = self.priority
        results = await asyncio.gather(*(sub._run_in_order(g) for sub, g in zip(subs, groups, strict=True)),
                                       return_exceptions=True)
        self.tokens = base + [t for sub in subs for t in sub.tokens[len(base):]]
        bad = [r for r in results if isinstance(r, BaseException)]
        if bad:
            raise bad[0]

    async def _run_in_order(self, work: Sequence[Work]) -> None:
        """Run ``work``'s calls in order as one chain; a placement (a single sub-exposure as
        the merged list) is done where it stands."""
        pending: list[SasCall] = []
        for item in work:
            if isinstance(item, Copy):
                if pending:
                    await self.run(pending)
                    pending = []
                await asyncio.to_thread(place_single, item.source, item.dest)
            else:
                pending.append(item)
        if pending:
            await self.run(pending)

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


async def _unit(si: StageInput, ctx: ObsContext, driver: Driver, base: list[str]) -> list[str] | DataQualityStop | None:
    """One sub-exposure's chain: its unit stages of the table, in order.

    Returns the tokens of what it made (the merge and images read them), its data-quality stop, or None if it failed.
    """
    chain = Chain(ctx, driver, base)
    try:
        await chain.run_stages("unit", si)
        return chain.tokens
    except DataQualityStop as stop:  # the runner logged why
        return stop
    except Exception as exc:
        if _left_stale(exc):
            return chain.tokens
        log.warning("%s: chain stopped: %s", si.the_unit.label, short(exc))
        return None


async def _instrument(si: StageInput, ctx: ObsContext, driver: Driver, base: list[str]) -> bool:
    """One instrument's stages (its merges), then its band stages (images and exposure
    maps), the bands side by side.

    ``base`` holds the tokens of every unit merged, so a re-made sub-exposure list re-makes
    the merged list and the images even though their argv are unchanged.
    """
    chain = Chain(ctx, driver, base)
    bands = band_inputs(si)
    try:
        try:
            await chain.run_stages("instrument", si)
        except Exception as exc:  # no band can be made from a merge that failed
            chain.fail_rest(calls_only([w for b in bands for w in planned_work("band", b)]), exc)
            raise
        results = await asyncio.gather(*(Chain(ctx, driver, chain.tokens).run_stages("band", b) for b in bands),
                                       return_exceptions=True)
        bad = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DataQualityStop)]
        if bad:
            raise bad[0]
        return True
    except Exception as exc:
        if _left_stale(exc) or isinstance(exc, DataQualityStop):
            return True
        log.warning("%s %s: %s stopped: %s", ctx.obsid, si.inst, "/".join(_after_units(si)), short(exc))
        return False


def _after_units(si: StageInput) -> list[str]:
    """The names of the instrument's and bands' stages, for messages."""
    return [s.name for scope in ("instrument", "band") for s in stages_for(scope, si)]


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
    failed: list[str] = []
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
            head = Chain(ctx, driver)
            await head.run_stages("observation", si)
            units = select_observation_units(si)
        except Exception as exc:  # a bad ODF or summary, or cifbuild/odfingest failed for good
            status = "interrupted" if isinstance(exc, interrupt.Interrupted) else "failed"
            return ObservationOutcome(obsid=obsid, status=status, message=short(exc), duration_s=time.time() - t0)

        base = head.tokens
        # the longest chains start first: free SAS slots go to whoever asks first
        launch = longest_first(si, units)
        jobs = [_unit(unit_input(si, u), ctx, driver, base) for u in launch]

        # Each instrument's stages wait for that instrument's units only.
        async def instrument_after(inst: str, unit_jobs: list[Any], its_units: list[Unit]) -> None:
            unit_tokens = await asyncio.gather(*unit_jobs)
            for u, tokens in zip(its_units, unit_tokens, strict=True):
                if tokens is None:
                    failed.append(u.label)
            good = tuple(u for u, tokens in zip(its_units, unit_tokens, strict=True) if isinstance(tokens, list))
            made = [t for tokens in unit_tokens if isinstance(tokens, list) for t in tokens]
            its = replace(si, inst=inst, units=good or tuple(its_units))
            if good:
                if not await _instrument(its, ctx, driver, made):
                    failed.append(f"{obsid}{inst}-{'/'.join(_after_units(its))}")
            else:  # record that what the instrument's units feed could not be made
                not_made = planned_work("instrument", its) + [w for b in band_inputs(its) for w in planned_work("band", b)]
                unusable = all(isinstance(t, DataQualityStop) for t in unit_tokens)
                Chain(ctx, driver).fail_rest(calls_only(not_made), (DataQualityStop if unusable else RuntimeError)(
                    f"no {inst} sub-exposure was {'usable' if unusable else 'processed'}"))

        by_inst: dict[str, tuple[list[Any], list[Unit]]] = {}
        for u, job in zip(launch, jobs, strict=True):
            by_inst.setdefault(u.inst, ([], []))
            by_inst[u.inst][0].append(job)
            by_inst[u.inst][1].append(u)
        await asyncio.gather(*(instrument_after(i, js, us) for i, (js, us) in by_inst.items()))
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
