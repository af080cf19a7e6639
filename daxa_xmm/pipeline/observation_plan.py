"""The plan of one observation: the jobs the pipeline's table makes of it, and what each reads.

A job is one line of the table (:mod:`daxa_xmm.pipeline.stages`) for one input: the
observation, a sub-exposure, an instrument or an instrument's energy band. What it reads
follows from the lines' scopes, and is written here once:

- an observation stage reads the observation stage before it;
- a unit's first stage reads the observation's last, each later one the unit's stage before;
- an instrument's first stage reads the end of each of its units' chains (it runs with the
  units whose chain finished: :attr:`Job.over_units`), each later one the stage before;
- a band's first stage reads its instrument's last stage, each later one the stage before.

Everything that follows the observation's chain reads this plan: the run
(:mod:`daxa_xmm.pipeline.observation_run`, in the archive flow and the head start), the
plan-first check and ``--dry-run`` (:mod:`daxa_xmm.pipeline.walk`), what a failure stops,
and the inputs of DAXA's step functions (:mod:`daxa_xmm.daxa.step_inputs`). A job's calls
are built when asked (:meth:`Job.build`), not with the plan: a stage may read what the
stage before it wrote (the cleaning reads emanom's verdict on the CCDs).
"""

from __future__ import annotations

__all__ = ["Job", "ObservationPlan", "observation_plan"]

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.stages import band_inputs, stages_for, unit_input
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.steps.spec import Scope, Stage, StageInput


@dataclass(frozen=True)
class Job:
    """One stage for one input.

    Attributes:
        stage: the table's line.
        input: what its builder is given.
        position: the stage's place among its scope's stages for this input (the first is
            0): what is behind its calls when they wait for a SAS slot.
        reads: the jobs (their places in the plan) whose products it reads.
        over_units: it reads the chains of several units (an instrument's first stage) and
            runs with those whose chain finished, unless none did.
    """

    stage: Stage
    input: StageInput
    position: int
    reads: tuple[int, ...] = ()
    over_units: bool = False

    @property
    def scope(self) -> Scope:
        return self.stage.scope

    def build(self) -> list[SasCall]:
        """Its calls, in the order they run, from what is on disk now."""
        return list(self.stage.build(self.input))

    def planned(self) -> list[SasCall]:
        """Its calls as a plan lists them (nothing of earlier calls' outputs read)."""
        return list(self._planned)

    @functools.cached_property
    def _planned(self) -> tuple[SasCall, ...]:
        # built once per job: a plan's calls read nothing on disk, and DAXA's step inputs ask
        # for the calls of every job before each unit's
        return tuple(self.stage.build(dataclasses.replace(self.input, planning=True)))

    def with_units(self, units: Sequence[Unit]) -> Job:
        """The job for these of its instrument's units only (those whose chains finished)."""
        return dataclasses.replace(self, input=dataclasses.replace(self.input, units=tuple(units)))

    def surviving(self, lost: Sequence[Job]) -> Job | None:
        """This job once the jobs ``lost``, of those it reads, made nothing usable: None when
        it cannot run (it reads one of them, or every unit's chain), else the job for the units
        whose chains finished. The run and the plan-first check both decide by this."""
        if not lost:
            return self
        if not self.over_units or len(lost) == len(self.reads):
            return None
        gone = {j.input.unit for j in lost}
        return self.with_units([u for u in self.input.units if u not in gone])


@dataclass(frozen=True)
class ObservationPlan:
    """The jobs of one observation, each after every job it reads (``--dry-run``'s order)."""

    jobs: tuple[Job, ...]

    def upstream(self, i: int) -> list[int]:
        """Every job that job ``i`` reads, directly or not, in plan order."""
        seen: set[int] = set()
        todo = list(self.jobs[i].reads)
        while todo:
            j = todo.pop()
            if j not in seen:
                seen.add(j)
                todo.extend(self.jobs[j].reads)
        return sorted(seen)

    def readers(self, i: int) -> list[int]:
        """The jobs that read job ``i`` directly."""
        return [k for k, job in enumerate(self.jobs) if i in job.reads]


def _chain(jobs: list[Job], scope: Scope, si: StageInput, reads: tuple[int, ...], over_units: bool = False) -> tuple[int, ...]:
    """Append ``scope``'s stages for ``si`` as a chain reading ``reads``; the chain's end."""
    for position, stage in enumerate(stages_for(scope, si)):
        jobs.append(Job(stage, si, position, reads, over_units and position == 0))
        reads = (len(jobs) - 1,)
    return reads


def observation_plan(si: StageInput, units: Sequence[Unit] | None = None) -> ObservationPlan:
    """The plan of ``si``'s observation: its observation stages, then, given its ``units``
    (known once odfingest wrote the summary), each unit's chain, each instrument's stages
    and each band's. Without ``units``, the observation's stages only: their jobs come first
    in the whole plan too, in the same places."""
    jobs: list[Job] = []
    head = _chain(jobs, "observation", si, ())
    if units is None:
        return ObservationPlan(tuple(jobs))
    ends: dict[str, list[int]] = {}
    for unit in units:
        ends.setdefault(unit.inst, []).extend(_chain(jobs, "unit", unit_input(si, unit), head))
    for inst, chains in ends.items():
        its = dataclasses.replace(si, inst=inst, units=tuple(u for u in units if u.inst == inst))
        made = tuple(dict.fromkeys(chains))
        end = _chain(jobs, "instrument", its, made, over_units=True)
        for band in band_inputs(its):
            _chain(jobs, "band", band, end, over_units=end == made)
    return ObservationPlan(tuple(jobs))
