"""What one DAXA step function's unit reads: whether its prerequisite succeeded, and the
identity tokens of everything before it in the observation's plan.

The archive flow carries tokens from job to job as it runs the observation's plan
(:mod:`daxa_xmm.pipeline.observation_plan`). A step function runs one step at a time, so it
takes the same tokens from the manifest records of the calls of the jobs its job reads, in
the same plan: with the same tokens the calls get the same fingerprints, so the flow skips
what the step functions made and the step functions skip what the flow made.
"""

from __future__ import annotations

__all__ = ["UnitInputs", "cleaned_units", "step_inputs"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.identity import record_token
from daxa_xmm.pipeline.manifest import Manifest, StepRecord
from daxa_xmm.pipeline.observation_plan import ObservationPlan
from daxa_xmm.pipeline.stages import DAXA_PREREQUISITES, daxa_function
from daxa_xmm.sas.calls import SasCall


@dataclass(frozen=True)
class UnitInputs:
    """``ready``: the prerequisite succeeded (else ``why`` says what failed); ``tokens``:
    the identity of what the unit's calls read."""

    ready: bool
    tokens: tuple[str, ...] = ()
    why: str = ""


def cleaned_units(manifest: Manifest, units: Sequence[Unit]) -> list[Unit]:
    """The sub-exposures whose cleaned event lists were made (what a merge may read)."""
    return [u for u in units if _cleaned(manifest, u)]


def _cleaned(manifest: Manifest, unit: Unit) -> bool:
    records = [r for r in manifest.records.values() if r.unit == unit.label and daxa_function(r.step) == "cleaned_evt_lists"]
    return bool(records) and all(r.status == "ok" for r in records)


def _tokens(records: Iterable[StepRecord | None]) -> tuple[str, ...]:
    """The tokens of the calls that ran: a step a DAXA user may leave out (emanom) adds
    its token only when it ran, as its absence changes what the next one reads."""
    return tuple(record_token(r) for r in records if r is not None and r.status == "ok")


def _job_of(plan: ObservationPlan, step: str, label: str, inst: str | None) -> int:
    """The job that makes ``label``'s calls of DAXA function ``step``. An instrument's jobs
    are found by their instrument (DAXA's bands may be other than the run's: every band
    reads the same)."""
    for i, job in enumerate(plan.jobs):
        if job.scope in ("instrument", "band"):
            if inst is not None and job.input.inst == inst and step in {f.name for f in job.stage.daxa}:
                return i
        elif any(c.unit == label and daxa_function(c.step) == step for c in job.planned()):
            return i
    raise KeyError(f"{label}: no {step} in the observation's plan")


def step_inputs(plan: ObservationPlan, manifest: Manifest, layout: ArchiveLayout, step: str, label: str,
                inst: str | None = None) -> UnitInputs:
    """What ``label``'s calls of DAXA function ``step`` read (``inst``: the instrument of an
    instrument's or band's label), from the records of the calls before them in ``plan``.

    A unit's step is ready when every record of the step it needs (DAXA_PREREQUISITES) is
    ok. An instrument's merge reads the sub-exposures that were cleaned (as DAXA merges
    them), its images the merged list.
    """
    i = _job_of(plan, step, label, inst)
    job, obsid = plan.jobs[i], plan.jobs[i].input.obsid
    upstream = plan.upstream(i)
    if job.scope in ("instrument", "band"):
        good = cleaned_units(manifest, job.input.units)
        if not good:
            return UnitInputs(False, why=f"{obsid}{inst}: no cleaned event list to merge (cleaned_evt_lists did not succeed)")
        if job.scope == "band" and not layout.merged_events(obsid, job.input.the_inst, "clean").exists():
            return UnitInputs(False, why=f"{obsid}{inst}: no merged event list (merge_subexposures did not succeed)")
        # as the flow runs them: with the units whose chains finished (here: were cleaned)
        kept = [plan.jobs[k].with_units(good) if plan.jobs[k].scope == "instrument" else plan.jobs[k]
                for k in upstream if plan.jobs[k].input.unit is None or plan.jobs[k].input.unit in good]
        return UnitInputs(True, _tokens(_records(manifest, (c for j in kept for c in j.planned()))))
    own = job.planned()
    first = next(n for n, c in enumerate(own) if c.unit == label and daxa_function(c.step) == step)
    before = [c for k in upstream for c in plan.jobs[k].planned()] + own[:first]
    records = _records(manifest, before)
    needs = DAXA_PREREQUISITES.get(step, ())
    if not needs:
        return UnitInputs(True, _tokens(records))
    needed = [(daxa_function(c.step), r) for c, r in zip(before, records, strict=True) if daxa_function(c.step) in needs]
    failed = list(dict.fromkeys(s for s, r in needed if r is None or r.status != "ok"))
    if failed or not needed:
        return UnitInputs(False, why=f"{label}: {' and '.join(failed) or ' or '.join(needs)} did not succeed")
    return UnitInputs(True, _tokens(records))


def _records(manifest: Manifest, calls: Iterable[SasCall]) -> list[StepRecord | None]:
    return [manifest.get(c.unit, c.step) for c in calls]
