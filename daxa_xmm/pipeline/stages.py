"""The pipeline's table: every SAS step of an observation, in order, with what it runs on.

One line per step, each declared in its step's module (``STAGE``, a
:class:`~daxa_xmm.steps.spec.Stage`), and every list of steps is derived from this table:
the step names of ``--steps``/``--force`` and the settings' sections (:mod:`daxa_xmm.config`),
DAXA's step functions and their prerequisites, which step a call belongs to (below), the
stand-in's tasks. The observation's plan (:mod:`daxa_xmm.pipeline.observation_plan`),
which the run, the plan-first check, ``--dry-run`` and DAXA's step functions read, is made
from it, and so are DAXA's plans. Adding a SAS step is its module under
``daxa_xmm/steps/`` (settings, argv builder, declared outputs, its ``STAGE``), one line
here, and its stand-in task.

A stage's *scope* says what it runs once for, and so what it waits for:

- ``observation``: once per ObsID, first (cifbuild, odfingest);
- ``unit``: once per selected sub-exposure, after the observation's stages; the unit's
  stages run in table order, one chain per unit, all units side by side;
- ``instrument``: once per instrument, after that instrument's units (the merges);
- ``band``: once per instrument and energy band, after the instrument's stages, the bands
  side by side (images and exposure maps).

Within its scope a stage reads what the stages before it made: that is its dependency, and
the identity tokens of those calls are folded into its own (:mod:`daxa_xmm.pipeline.identity`). A
stage's work for different unit labels (an instrument's merged lists, one per kind) reads
nothing of each other: each label is one chain, the labels side by side (:func:`by_unit`).
"""

from __future__ import annotations

__all__ = ["PIPELINE", "STAGE_NAMES", "SECTIONS", "DAXA_FUNCTIONS", "DAXA_STEPS", "DAXA_PREREQUISITES",
           "pipeline_step", "daxa_function", "stage_named", "stages_for", "planned_work",
           "path_s", "call_priorities", "by_unit", "longest_first", "band_inputs", "unit_input"]

import dataclasses
from collections.abc import Sequence

from daxa_xmm.odf.models import UNIT_INSTRUMENTS, Unit
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.steps import cifbuild, clean_events, emanom, emchain, epchain, espfilt, images, merge, odfingest, rgsproc
from daxa_xmm.steps.spec import DaxaFunction, Scope, Section, Stage, StageInput

#: The pipeline, in order: each step's line is declared in its module (its ``STAGE``). Unit
#: stages of one unit form its chain in this order. The typical times are the relative costs
#: of issue #14's model of a run (epchain 4 s a call, emchain 3, espfilt 1, evselect 0.4,
#: emanom 0.3, cifbuild and odfingest 0.5), not measurements.
PIPELINE: tuple[Stage, ...] = (
    cifbuild.STAGE,
    odfingest.STAGE,
    epchain.STAGE,
    emchain.STAGE,
    rgsproc.STAGE,
    emanom.STAGE,
    espfilt.STAGE,
    clean_events.STAGE,
    merge.STAGE,
    images.STAGE,
)

#: The steps' names, in order: what ``--steps`` and ``--force`` accept.
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in PIPELINE)

#: The steps' settings sections, in table order.
SECTIONS: tuple[Section, ...] = tuple(s.section for s in PIPELINE if s.section is not None)

#: DAXA's step functions, in the order a DAXA notebook calls them.
DAXA_FUNCTIONS: tuple[DaxaFunction, ...] = tuple(f for s in PIPELINE for f in s.daxa)
DAXA_STEPS: tuple[str, ...] = tuple(f.name for f in DAXA_FUNCTIONS)
#: What each DAXA function needs run first (any one of them).
DAXA_PREREQUISITES: dict[str, tuple[str, ...]] = {f.name: f.needs for f in DAXA_FUNCTIONS if f.needs}


def _owner(call_step: str) -> tuple[Stage, str] | None:
    """The line whose calls are named ``call_step`` (or ``<name>_<n>``), and the name."""
    for stage in PIPELINE:
        for name in stage.call_names:
            if call_step == name or (call_step.startswith(f"{name}_") and call_step[len(name) + 1:].isdigit()):
                return stage, name
    return None


def pipeline_step(call_step: str) -> str:
    """The table's step a call belongs to: ``epchain_oot`` -> ``epchain``;
    ``merge_subexposures_2`` -> ``merge_subexposures``; a name of no line is its own."""
    owner = _owner(call_step)
    return owner[0].name if owner else call_step


def daxa_function(call_step: str) -> str:
    """The DAXA function a call belongs to: ``epchain_oot`` -> ``epchain``,
    ``rgs_angles`` -> ``rgs_angles``; a name of no line is its own."""
    owner = _owner(call_step)
    if owner is None:
        return call_step
    stage, name = owner
    return next((f.name for f in stage.daxa if not f.calls or name in f.calls), stage.name)


def stage_named(name: str) -> Stage:
    """The table's line for step ``name``."""
    for stage in PIPELINE:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage {name!r} in the pipeline; the steps are {', '.join(STAGE_NAMES)}")


def stages_for(scope: Scope, si: StageInput, table: Sequence[Stage] | None = None) -> list[Stage]:
    """The stages of ``scope`` that run for ``si``, in order (``table`` defaults to PIPELINE,
    read when called, so a step added to it is seen everywhere)."""
    return [s for s in (PIPELINE if table is None else table) if s.scope == scope and s.applies(si)]


def planned_work(scope: Scope, si: StageInput) -> list[SasCall]:
    """Everything ``scope``'s stages would run for ``si``, built as a plan."""
    plan = dataclasses.replace(si, planning=True)
    return [w for stage in stages_for(scope, plan) for w in stage.build(plan)]


def path_s(scope: Scope, si: StageInput, start: int = 0) -> float:
    """The typical time from the ``start``-th of ``scope``'s stages for ``si`` to the end of
    the longest path of its observation: what a call there has behind it.

    A call waiting for a SAS slot with more behind it goes first (:mod:`daxa_xmm.sas.slots`):
    an observation's head stages before any chain, PN's long chain before MOS's, images
    last. Before odfingest the units are unknown, so the observation's stages count the
    longest chain of any instrument.
    """
    own = sum(s.typical_s for s in stages_for(scope, si)[start:])
    if scope == "observation":
        return own + max(path_s("unit", dataclasses.replace(si, inst=inst)) for inst in UNIT_INSTRUMENTS)
    if scope == "unit":
        return own + path_s("instrument", si)
    if scope == "instrument":
        return own + path_s("band", si)
    return own


def longest_first(si: StageInput, units: Sequence[Unit]) -> list[Unit]:
    """``units`` by the typical work behind their chains (:func:`path_s`), most first; ties
    keep their order. Chains started in this order ask for SAS slots in it, and a slot that is
    free goes to whoever asks first (priority orders only the calls that wait)."""
    return sorted(units, key=lambda u: -path_s("unit", unit_input(si, u)))


def call_priorities(scope: Scope, si: StageInput, k: int, calls: Sequence[SasCall]) -> dict[tuple[str, str], float]:
    """The work behind each call of the ``k``-th of ``scope``'s stages, by (unit, step): the
    stage's path (:func:`path_s`), less the stage's share already done before that call."""
    behind, each = path_s(scope, si, k), stages_for(scope, si)[k].typical_s / max(len(calls), 1)
    return {(c.unit, c.step): behind - each * j for j, c in enumerate(calls)}


def by_unit(work: Sequence[SasCall]) -> list[list[SasCall]]:
    """A stage's work split by unit label, in order of first appearance, each unit's items in
    order. A stage's units read nothing of each other (an instrument's merged lists, one per
    kind, each in its own working folder), so each is one chain and they run side by side."""
    groups: dict[str, list[SasCall]] = {}
    for item in work:
        groups.setdefault(item.unit, []).append(item)
    return list(groups.values())


def unit_input(si: StageInput, unit: Unit) -> StageInput:
    return dataclasses.replace(si, unit=unit, inst=unit.inst)


def band_inputs(si: StageInput) -> list[StageInput]:
    """One input per energy band of the run, for an instrument's input ``si``."""
    return [dataclasses.replace(si, band=band) for band in si.config.section(images.ImageConfig).bands_ev()]
