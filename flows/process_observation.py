"""The per-observation subflow: one ObsID from ODF to cleaned, merged lists and images.

cifbuild -> odfingest -> summary -> (PN, MOS and RGS chains, one per sub-exposure, all at
once) -> per instrument: merge -> images and exposure maps per band.

Each chain is a plain coroutine awaiting its SAS tasks in order, so a unit waits only for
what it reads: no barrier between units or instruments, and nothing across observations
(the archive flow runs observations side by side). A failed step stops only its own chain;
what depended on it is recorded as ``upstream_failed`` and the rest of the observation goes
on.
"""

from __future__ import annotations

__all__ = ["process_observation", "ObservationOutcome"]

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from prefect import flow
from pydantic import BaseModel

from daxa_xmm.calls import SasCall
from daxa_xmm.config import ProcessingConfig
from daxa_xmm.emanom import emanom_supported, parse_emanom_out
from daxa_xmm.models import EPIC, Unit
from daxa_xmm.sasversion import parse_sas_version
from daxa_xmm.selection import select_units
from daxa_xmm.steps.cifbuild import cifbuild_calls
from daxa_xmm.steps.clean_events import clean_events_calls
from daxa_xmm.steps.emanom import emanom_calls
from daxa_xmm.steps.emchain import emchain_calls
from daxa_xmm.steps.epchain import epchain_calls
from daxa_xmm.steps.espfilt import espfilt_calls
from daxa_xmm.steps.images import image_expmap_calls
from daxa_xmm.steps.merge import merge_calls, place_single
from daxa_xmm.steps.odfingest import odfingest_calls
from daxa_xmm.steps.rgsproc import rgsproc_calls
from daxa_xmm.summary import read_observation_record, read_odf_summary
from flows.progress import progress
from tasks.sas_step import ObsContext, StepSkipped, sas_task, with_upstream

log = logging.getLogger(__name__)


class ObservationOutcome(BaseModel):
    """What happened to one observation, for the archive report."""

    obsid: str
    status: str  # ok | partial | failed
    message: str = ""
    units: list[str] = []
    failed: list[str] = []
    duration_s: float = 0.0


@lru_cache(maxsize=None)
def _task(name: str, retries: int, delay_s: float):  # type: ignore[no-untyped-def]
    return sas_task(name, retries, delay_s)


class _Chain:
    """Runs calls in order for one unit, carrying the identity of what each call read."""

    def __init__(self, ctx: ObsContext, cfg: ProcessingConfig, tokens: Sequence[str] = ()) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.tokens: list[str] = list(tokens)

    async def run(self, calls: Sequence[SasCall]) -> list[str]:
        """Run ``calls`` in order; each depends on the previous ones of this chain."""
        produced = []
        for i, call in enumerate(calls):
            call = with_upstream(call, self.tokens)
            step_task = _task(call.step, self.cfg.retries, self.cfg.retry_delay_s())
            progress.started(self.ctx.obsid, call)
            try:
                out = await step_task(call, self.ctx)
            except Exception as exc:
                self.fail_rest(calls[i + 1 :], exc)
                raise
            finally:
                progress.finished(self.ctx.obsid, call)
            self.tokens.append(out["token"])
            produced.extend(out["products"])
        return produced

    def fail_rest(self, calls: Sequence[SasCall], cause: BaseException) -> None:
        """Record the calls that cannot run because something they read failed (or was not selected)."""
        store = self.ctx.store()
        status = "skipped" if isinstance(cause, StepSkipped) else "upstream_failed"
        for call in calls:
            store.mark(call, status, f"not run: {_short(cause)}", sas_version=self.ctx.sas_version)


async def _epic_unit(unit: Unit, ctx: ObsContext, cfg: ProcessingConfig, base: list[str], summary) -> list[str] | None:  # type: ignore[no-untyped-def]
    """One PN or MOS sub-exposure: chain -> [emanom] -> espfilt -> evselect.

    Returns the identity tokens of what it made (the merge and images read them), or None
    when the unit failed.
    """
    layout, timeout = ctx.layout, cfg.timeout_s()
    sasv = parse_sas_version(ctx.sas_version)
    chain = _Chain(ctx, cfg, base)
    clean_cfg = cfg.clean.to_step()
    if unit.inst == "PN":
        first = epchain_calls(layout, unit, summary, sasv, timeout)
    else:
        first = emchain_calls(layout, unit, summary, timeout)
        if emanom_supported(sasv):
            first += emanom_calls(layout, unit, sasv, timeout)
    espf = espfilt_calls(layout, unit, cfg.espfilt.to_step(), sasv, timeout)
    planned_clean = clean_events_calls(layout, unit, clean_cfg, None, timeout)
    stage = first
    try:
        await chain.run(first)
        stage = espf
        await chain.run(espf)
        accepted = None
        if unit.inst != "PN" and clean_cfg.filt_mos_anom_state and emanom_supported(sasv):
            log_path = layout.emanom_log(unit.obsid, unit.inst, unit.exp_id)
            accepted = parse_emanom_out(log_path, clean_cfg.acc_mos_anom_states)
        stage = planned_clean
        await chain.run(clean_events_calls(layout, unit, clean_cfg, accepted, timeout))
        return chain.tokens
    except Exception as exc:
        chain.fail_rest(_after(stage, [first, espf, planned_clean]), exc)
        log.warning("%s: chain stopped: %s", unit.label, _short(exc))
        return None


def _after(stage: list[SasCall], groups: list[list[SasCall]]) -> list[SasCall]:
    """The calls of the groups after ``stage``."""
    idx = next(i for i, g in enumerate(groups) if g is stage)
    return [c for g in groups[idx + 1 :] for c in g]


async def _rgs_unit(unit: Unit, ctx: ObsContext, cfg: ProcessingConfig, base: list[str], summary) -> list[str] | None:  # type: ignore[no-untyped-def]
    """One RGS sub-exposure: rgsproc's events, angles and filter stages."""
    chain = _Chain(ctx, cfg, base)
    try:
        await chain.run(rgsproc_calls(ctx.layout, unit, summary, timeout_s=cfg.timeout_s()))
        return chain.tokens
    except Exception as exc:
        log.warning("%s: rgsproc stopped: %s", unit.label, _short(exc))
        return None


async def _instrument(inst: str, units: list[Unit], ctx: ObsContext, cfg: ProcessingConfig, base: list[str]) -> bool:
    """Merge one instrument's cleaned sub-exposures, then make its images and exposure maps.

    ``base`` holds the tokens of every unit merged, so a re-made sub-exposure list re-makes
    the merged list and the images even though their argv are unchanged.
    """
    layout, obsid, timeout = ctx.layout, ctx.obsid, cfg.timeout_s()
    chain = _Chain(ctx, cfg, base)
    try:
        for kind, oot in (("clean", False), ("clean_oot", True)):
            if oot and inst != "PN":
                continue
            sources = [layout.clean_events(obsid, inst, u.exp_id, oot=oot) for u in units]
            plan = merge_calls(layout, obsid, f"{obsid}{inst}-{kind}", sources, layout.merged_events(obsid, inst, kind), timeout)
            if plan.single_source is not None:
                place_single(plan.single_source, plan.dest)
            else:
                await chain.run(plan.calls)
        img_chain = [c for lo, hi in cfg.images.bands_ev() for c in image_expmap_calls(layout, obsid, inst, lo, hi, cfg.images.to_step(), timeout)]
        # bands are independent of each other
        pairs = [img_chain[i : i + 2] for i in range(0, len(img_chain), 2)]
        results = await asyncio.gather(*(_Chain(ctx, cfg, chain.tokens).run(p) for p in pairs), return_exceptions=True)
        bad = [r for r in results if isinstance(r, BaseException)]
        if bad:
            raise bad[0]
        return True
    except Exception as exc:
        log.warning("%s %s: merge/images stopped: %s", obsid, inst, _short(exc))
        return False


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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
    t0 = time.time()
    layout, timeout = ctx.layout, config.timeout_s()
    failed: list[str] = []
    progress.observation_started(obsid)
    try:
        try:
            record = read_observation_record(layout.odf_sum_asc(obsid))
            head = _Chain(ctx, config)
            await head.run(cifbuild_calls(layout, obsid, record.start, config.cifbuild(), timeout))
            await head.run(odfingest_calls(layout, obsid, record.revolution, timeout))
            summary_path = layout.summary(obsid, record.revolution)
            summary = read_odf_summary(summary_path, obs_id=obsid)
        except Exception as exc:  # a bad ODF or summary, or cifbuild/odfingest failed for good
            return ObservationOutcome(obsid=obsid, status="failed", message=_short(exc), duration_s=time.time() - t0)

        units = select_units(summary, instruments=tuple(config.instruments), process_unscheduled=config.process_unscheduled)
        base = head.tokens
        jobs: list[Any] = []
        for u in units:
            if u.inst in EPIC:
                jobs.append(_epic_unit(u, ctx, config, base, summary_path))
            else:
                jobs.append(_rgs_unit(u, ctx, config, base, summary_path))

        # Each instrument's merge waits for that instrument's units only.
        async def instrument_after(inst: str, unit_jobs: list[Any], its_units: list[Unit]) -> None:
            unit_tokens = await asyncio.gather(*unit_jobs)
            for u, tokens in zip(its_units, unit_tokens):
                if tokens is None:
                    failed.append(u.label)
            good = [u for u, tokens in zip(its_units, unit_tokens) if tokens is not None]
            made = [t for tokens in unit_tokens if tokens is not None for t in tokens]
            if inst in EPIC and good:
                if not await _instrument(inst, good, ctx, config, made):
                    failed.append(f"{obsid}{inst}-merge/images")

        by_inst: dict[str, tuple[list[Any], list[Unit]]] = {}
        for u, job in zip(units, jobs):
            by_inst.setdefault(u.inst, ([], []))
            by_inst[u.inst][0].append(job)
            by_inst[u.inst][1].append(u)
        await asyncio.gather(*(instrument_after(i, js, us) for i, (js, us) in by_inst.items()))
        status = "ok" if not failed else ("failed" if len(failed) >= len(units) and units else "partial")
        if not units:
            return ObservationOutcome(obsid=obsid, status="ok", message="no processable exposures", duration_s=time.time() - t0)
        return ObservationOutcome(
            obsid=obsid,
            status=status,
            units=[u.label for u in units],
            failed=failed,
            message="" if not failed else f"{len(failed)} unit(s) failed",
            duration_s=time.time() - t0,
        )
    finally:
        progress.observation_finished(obsid)
