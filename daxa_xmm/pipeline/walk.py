"""Walking one observation's plan (:mod:`daxa_xmm.pipeline.observation_plan`) without running it.

The plan-first check (:mod:`daxa_xmm.pipeline.uptodate`) and ``--dry-run`` (:func:`plan_observation`)
visit its jobs here, each with what it reads, as the run
(:mod:`daxa_xmm.pipeline.observation_run`) runs them: all three read one plan, so they agree
on what an observation needs. Pure apart from reading the observation's summary files.
"""

from __future__ import annotations

__all__ = ["ChainVisitor", "observation_input", "walk_observation", "select_observation_units", "plan_observation"]

from collections.abc import Callable, Sequence

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import ObservationRecord, Unit
from daxa_xmm.odf.selection import select_units
from daxa_xmm.odf.summary import read_observation_record, read_odf_summary
from daxa_xmm.pipeline.observation_plan import ObservationPlan, observation_plan
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps.spec import StageInput

#: Called with each stage's work and the identity tokens of what it reads; returns the
#: tokens after it (the plan-first check folds tokens; a plan only lists the work), or None
#: when the work stops at a data-quality outcome: then, as in the run, what it feeds is not
#: made (a job over an instrument's units goes on with the others).
ChainVisitor = Callable[[Sequence[SasCall], list[str]], list[str] | None]


def observation_input(layout: ArchiveLayout, record: ObservationRecord, config: ProcessingConfig,
                      sas_version: SasVersion, planning: bool = False) -> StageInput:
    return StageInput(layout=layout, config=config, sas_version=sas_version, record=record,
                      timeout_s=config.timeout_s(), planning=planning)


def walk_observation(si: StageInput, select: Callable[[], Sequence[Unit]], visit: ChainVisitor) -> None:
    """Visit every job of the observation's plan (:mod:`daxa_xmm.pipeline.observation_plan`)
    in its order, each with the tokens of every job it reads, each built only when visited
    (a stage may read what the one before wrote).

    ``select`` gives the units once the observation's stages were visited (their summary
    exists only then).
    """
    head = observation_plan(si)
    tokens: list[list[str] | None] = []

    def fold(plan: ObservationPlan, start: int) -> None:
        for job in plan.jobs[start:]:
            # what a data-quality outcome stops, as the run stops it (observation_run's _PlanRun)
            survivor = job.surviving([plan.jobs[r] for r in job.reads if tokens[r] is None])
            if survivor is None:
                tokens.append(None)
                continue
            tokens.append(visit(survivor.build(), [t for r in job.reads for t in tokens[r] or ()]))

    fold(head, 0)
    fold(observation_plan(si, select()), len(head.jobs))


def select_observation_units(si: StageInput) -> list[Unit]:
    """The units of the run's instruments in the observation's summary."""
    summary = read_odf_summary(si.summary, obs_id=si.obsid)
    return select_units(summary, instruments=tuple(si.config.instruments), process_unscheduled=si.config.process_unscheduled)


def plan_observation(
    layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: SasVersion
) -> list[tuple[str, SasCall | None]]:
    """Every call the run would make for ``obsid``, as (note, call) pairs, in order.

    Which units exist is only known from the odfingest summary: when no earlier run made
    one, the plan stops after odfingest with a note saying so.
    """
    out: list[tuple[str, SasCall | None]] = []

    def listed(work: Sequence[SasCall], tokens: list[str]) -> list[str]:
        out.extend(("", w) for w in work)
        return tokens

    class _Stop(Exception):
        pass

    def units(si: StageInput) -> list[Unit]:
        if not si.summary.exists():
            out.append(("the units of this observation are known once odfingest has written its summary", None))
            raise _Stop
        try:
            return select_observation_units(si)
        except DaxaXmmError as exc:
            out.append((f"summary unreadable, nothing more planned: {exc}", None))
            raise _Stop from None

    try:
        record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
    except DaxaXmmError as exc:
        return [(f"cannot plan {obsid}: {exc}", None)]
    si = observation_input(layout, record, config, sas_version, planning=True)
    try:
        walk_observation(si, lambda: units(si), listed)
    except _Stop:
        pass
    return out
