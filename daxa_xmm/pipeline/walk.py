"""Walking the pipeline's table (:mod:`daxa_xmm.pipeline.stages`) for one observation, without running it.

The plan-first check (:mod:`daxa_xmm.pipeline.uptodate`) and ``--dry-run`` (:func:`plan_observation`)
visit the calls here in the order the archive flow (``flows.process_observation``) runs
them, chain by chain, so all three agree on what an observation needs. Pure apart from
reading the observation's summary files.
"""

from __future__ import annotations

__all__ = ["ChainVisitor", "observation_input", "walk_observation", "select_observation_units", "plan_observation", "unit_chain_steps"]

from collections.abc import Callable, Sequence
from dataclasses import replace

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import ObservationRecord, Unit
from daxa_xmm.odf.selection import select_units
from daxa_xmm.odf.summary import read_observation_record, read_odf_summary
from daxa_xmm.pipeline.stages import band_inputs, stages_for, unit_input
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps.spec import Scope, StageInput, Work

#: Called with each stage's work and the identity tokens of what it reads; returns the
#: tokens after it (the plan-first check folds tokens; a plan only lists the work).
ChainVisitor = Callable[[Sequence[Work], list[str]], list[str]]


def observation_input(layout: ArchiveLayout, record: ObservationRecord, config: ProcessingConfig,
                      sas_version: SasVersion, planning: bool = False) -> StageInput:
    return StageInput(layout=layout, config=config, sas_version=sas_version, record=record,
                      timeout_s=config.timeout_s(), planning=planning)


def _stages(visit: ChainVisitor, scope: Scope, si: StageInput, tokens: list[str]) -> list[str]:
    for stage in stages_for(scope, si):
        tokens = visit(stage.build(si), tokens)  # built only now: a stage may read what the last one wrote
    return tokens


def walk_observation(si: StageInput, select: Callable[[], Sequence[Unit]], visit: ChainVisitor) -> None:
    """Visit every stage of the observation as the flow chains them: the observation's
    stages, then each unit's chain from their tokens, then per instrument its stages from
    all its units' tokens, then each band from the instrument's tokens.

    ``select`` gives the units once the observation's stages were visited (their summary
    exists only then).
    """
    base = _stages(visit, "observation", si, [])
    units = list(select())
    made: dict[str, list[str]] = {}
    for unit in units:
        made.setdefault(unit.inst, []).extend(_stages(visit, "unit", unit_input(si, unit), base))
    for inst, tokens in made.items():
        its = replace(si, inst=inst, units=tuple(u for u in units if u.inst == inst))
        after = _stages(visit, "instrument", its, tokens)
        for band in band_inputs(its):
            _stages(visit, "band", band, after)


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

    def listed(work: Sequence[Work], tokens: list[str]) -> list[str]:
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


def unit_chain_steps(layout: ArchiveLayout, unit: Unit, sas_version: SasVersion, record: ObservationRecord) -> list[str]:
    """The call steps of ``unit``'s chain in the order the archive flow runs them."""
    config = ProcessingConfig(archive=layout.raw_root, out=layout.out_root)
    si = unit_input(observation_input(layout, record, config, sas_version, planning=True), unit)
    return [w.step for stage in stages_for("unit", si) for w in stage.build(si) if isinstance(w, SasCall)]


