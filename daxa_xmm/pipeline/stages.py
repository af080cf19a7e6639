"""The pipeline's table: every SAS step of an observation, in order, with what it runs on.

One line per step. The archive flow, the plan-first check (:mod:`daxa_xmm.pipeline.uptodate`),
``--dry-run`` (:func:`daxa_xmm.pipeline.walk.plan_observation`), the DAXA step functions and the
seed API's plans (:mod:`daxa_xmm.daxa.plans`, by :func:`stage_named`) all walk this table; only the
seed names a step, as DAXA's function names do. Adding a SAS step is its module under
``daxa_xmm/steps/`` (config, argv builder, declared outputs), one line here, and its
stand-in task.

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

__all__ = ["PIPELINE", "STAGE_NAMES", "stage_named", "stages_for", "planned_work",
           "path_s", "call_priorities", "calls_only", "by_unit", "longest_first", "band_inputs", "unit_input"]

import dataclasses
from collections.abc import Callable, Sequence

from daxa_xmm.odf.models import EPIC, UNIT_INSTRUMENTS, Unit
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.emanom_log import emanom_supported, keep_ccds
from daxa_xmm.steps.cifbuild import CifBuildConfig, cifbuild_calls
from daxa_xmm.steps.clean_events import CleanEventsConfig, clean_events_calls
from daxa_xmm.steps.emanom import emanom_calls
from daxa_xmm.steps.emchain import emchain_calls
from daxa_xmm.steps.epchain import epchain_calls
from daxa_xmm.steps.espfilt import EspfiltConfig, espfilt_calls
from daxa_xmm.steps.images import ImageConfig, image_expmap_calls
from daxa_xmm.steps.merge import merge_calls, merge_streams
from daxa_xmm.steps.odfingest import odfingest_calls
from daxa_xmm.steps.rgsproc import rgsproc_calls
from daxa_xmm.steps.spec import Copy, Scope, Stage, StageInput, Work

# --- the builders' adapters: from a StageInput to each step module's builder ----------------

def _cifbuild(si: StageInput) -> list[SasCall]:
    return cifbuild_calls(si.layout, si.obsid, si.record.start, si.config.section(CifBuildConfig), si.timeout_s)


def _odfingest(si: StageInput) -> list[SasCall]:
    return odfingest_calls(si.layout, si.obsid, si.record.revolution, si.timeout_s)


def _epchain(si: StageInput) -> list[SasCall]:
    return epchain_calls(si.layout, si.the_unit, si.summary, si.sas_version, si.timeout_s)


def _emchain(si: StageInput) -> list[SasCall]:
    return emchain_calls(si.layout, si.the_unit, si.summary, si.timeout_s)


def _emanom(si: StageInput) -> list[SasCall]:
    return emanom_calls(si.layout, si.the_unit, si.sas_version, si.timeout_s)


def _rgsproc(si: StageInput) -> list[SasCall]:
    return rgsproc_calls(si.layout, si.the_unit, si.summary, timeout_s=si.timeout_s)


def _espfilt(si: StageInput) -> list[SasCall]:
    return espfilt_calls(si.layout, si.the_unit, si.config.section(EspfiltConfig), si.sas_version, si.timeout_s)


def _clean(si: StageInput) -> list[SasCall]:
    """evselect of the chain's lists; MOS keeps only the CCDs emanom accepted, when asked
    (read from emanom's log, so only once emanom has run: not while planning)."""
    unit, clean = si.the_unit, si.config.section(CleanEventsConfig)
    accepted = None
    if not si.planning and unit.inst != "PN" and clean.filt_mos_anom_state and emanom_supported(si.sas_version):
        accepted = keep_ccds(si.layout.emanom_log(unit.obsid, unit.inst, unit.exp_id), unit.ccds, clean.acc_mos_anom_states)
    return clean_events_calls(si.layout, unit, clean, accepted, si.timeout_s)


def _merge(si: StageInput) -> list[Work]:
    """The instrument's merged lists (cleaned, all-good, PN's out-of-time ones)."""
    inst, work = si.the_inst, list[Work]()
    streams = merge_streams(si.layout, si.obsid, inst, [u.exp_id for u in si.units], oot_allevc=si.sas_version >= (20, 0, 0))
    for kind, sources in streams:
        label = f"{si.obsid}{inst}-{kind}"
        plan = merge_calls(si.layout, si.obsid, label, sources, si.layout.merged_events(si.obsid, inst, kind), si.timeout_s)
        work += [Copy(plan.single_source, plan.dest, label)] if plan.single_source is not None else list(plan.calls)
    return work


def _images(si: StageInput) -> list[SasCall]:
    """One band's count image and exposure map, with the run's own selection expression."""
    if si.band is None:
        raise ValueError("a band stage was built without its band")
    clean = si.config.section(CleanEventsConfig)
    expr = clean.pn_filt_expr if si.the_inst == "PN" else clean.mos_filt_expr
    lo, hi = si.band
    return image_expmap_calls(si.layout, si.obsid, si.the_inst, lo, hi, si.config.section(ImageConfig), si.timeout_s,
                              user_expr=expr)


def _inst_is(*insts: str) -> Callable[[StageInput], bool]:
    return lambda si: si.the_inst in insts


def _mos_with_emanom(si: StageInput) -> bool:
    return si.the_inst in ("M1", "M2") and emanom_supported(si.sas_version)


_EPIC = _inst_is(*EPIC)

#: The pipeline, in order. Unit stages of one unit form its chain in this order. The typical
#: times are the relative costs of issue #14's model of a run (epchain 4 s a call, emchain 3,
#: espfilt 1, evselect 0.4, emanom 0.3, cifbuild and odfingest 0.5), not measurements.
PIPELINE: tuple[Stage, ...] = (
    Stage("cif_build", "observation", _cifbuild, typical_s=0.5),
    Stage("odf_ingest", "observation", _odfingest, typical_s=0.5),
    Stage("epchain", "unit", _epchain, _inst_is("PN"), typical_s=8.0),  # out-of-time run, then the normal one
    Stage("emchain", "unit", _emchain, _inst_is("M1", "M2"), typical_s=3.0),
    Stage("rgsproc", "unit", _rgsproc, _inst_is("R1", "R2"), typical_s=3.0),
    Stage("emanom", "unit", _emanom, _mos_with_emanom, typical_s=0.3),
    Stage("espfilt", "unit", _espfilt, _EPIC, typical_s=1.0),
    Stage("cleaned_evt_lists", "unit", _clean, _EPIC, typical_s=0.8),
    Stage("merge_subexposures", "instrument", _merge, _EPIC, typical_s=0.8),
    Stage("generate_images_expmaps", "band", _images, _EPIC, typical_s=0.8),
)

#: The steps' names, in order: what ``--steps`` and ``--force`` accept.
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in PIPELINE)


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


def planned_work(scope: Scope, si: StageInput) -> list[Work]:
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


def by_unit(work: Sequence[Work]) -> list[list[Work]]:
    """A stage's work split by unit label, in order of first appearance, each unit's items in
    order. A stage's units read nothing of each other (an instrument's merged lists, one per
    kind, each in its own working folder), so each is one chain and they run side by side."""
    groups: dict[str, list[Work]] = {}
    for item in work:
        groups.setdefault(item.unit, []).append(item)
    return list(groups.values())


def calls_only(work: Sequence[Work]) -> list[SasCall]:
    return [w for w in work if isinstance(w, SasCall)]


def unit_input(si: StageInput, unit: Unit) -> StageInput:
    return dataclasses.replace(si, unit=unit, inst=unit.inst)


def band_inputs(si: StageInput) -> list[StageInput]:
    """One input per energy band of the run, for an instrument's input ``si``."""
    return [dataclasses.replace(si, band=band) for band in si.config.section(ImageConfig).bands_ev()]
