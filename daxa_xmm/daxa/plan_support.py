"""What the DAXA-named plan functions of :mod:`daxa_xmm.daxa.plans` share: argument checks and planning.

Every seed function validates DAXA's common knobs the same way (``obs_archive`` an
:class:`~daxa_xmm.daxa.archive.Archive`, ``num_cores`` a whole number >= 1, ``timeout`` a Quantity
of time) and builds its :class:`~daxa_xmm.sas.calls.StepPlan` the same way: one observation, or
one unit, whose planning fails gets no calls and an ``error`` in its ``extra_info`` while
the others are planned. Every plan is built by the pipeline's own table
(:mod:`daxa_xmm.pipeline.stages`), so a seed function's calls are the archive flow's calls, byte for
byte: :func:`stage_input` gives a stage what the flow would, with DAXA's knobs as the
step's settings. Those pieces live here, apart from the steps themselves
(:mod:`daxa_xmm.daxa.plans` for the preprocessing steps, :mod:`daxa_xmm.daxa.product_plans` for
flare filtering, cleaning, merging and images).
"""

from __future__ import annotations

__all__ = [
    "NUM_CORES",
    "UnitPlans",
    "stage_input",
]

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import astropy.units as u
from astropy.units import Quantity

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.daxa.archive import Archive
from daxa_xmm.errors import ConfigError, DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.stages import stage_named, unit_input
from daxa_xmm.sas.calls import SasCall, StepPlan
from daxa_xmm.steps.spec import Stage, StageInput
from daxa_xmm.units import TIMEOUT

logger = logging.getLogger(__name__)

#: DAXA's default: 90% of this machine's cores, at least one.
NUM_CORES: int = max(1, int(0.9 * (os.cpu_count() or 1)))

# what a per-observation failure may be: ours, file system, bad content (pydantic too)
_OBS_ERRORS = (DaxaXmmError, OSError, ValueError, KeyError)

UnitPlans = dict[str, tuple[list[SasCall], dict[str, Any]]]


def _constant(value: Any, unit: str) -> Quantity:
    """A default Quantity that cannot be changed in place (every call shares it)."""
    q = Quantity(value, unit)
    q.flags.writeable = False
    return q


# --- argument checks ---------------------------------------------------------------------
def _timeout_s(timeout: Any) -> float | None:
    """Each call's time limit: a Quantity of time (or None, no limit), in seconds, by the
    run's own rule (:data:`daxa_xmm.units.TIMEOUT`: at least 1 s)."""
    if timeout is None:
        return None
    if not isinstance(timeout, Quantity) or not timeout.isscalar:
        raise ConfigError(f"timeout={timeout!r} must be an astropy Quantity of time, e.g. 2 * u.hour")
    return float(TIMEOUT.check(timeout, "timeout").to_value("s"))


def _cores(num_cores: Any) -> int:
    if isinstance(num_cores, bool) or not isinstance(num_cores, int) or num_cores < 1:
        raise ConfigError(f"num_cores={num_cores!r} must be an integer >= 1")
    return num_cores


def _archive(obs_archive: Any) -> Archive:
    if not isinstance(obs_archive, Archive):
        raise ConfigError(f"obs_archive must be a daxa_xmm Archive, got {type(obs_archive).__name__}")
    return obs_archive


def _plan(
    archive: Archive,
    per_obs: Callable[[str], UnitPlans],
    message: str,
    num_cores: int,
    disable_progress: bool,
    timeout: Any,
) -> StepPlan:
    """Run ``per_obs`` for every ObsID, isolating each observation's failure."""
    commands: dict[str, dict[str, list[SasCall]]] = {}
    final_paths: dict[str, dict[str, list[Path]]] = {}
    extra_info: dict[str, dict[str, Any]] = {}
    for obsid in archive.obsids:
        commands[obsid], final_paths[obsid], extra_info[obsid] = {}, {}, {}
        try:
            plans = per_obs(obsid)
        except _OBS_ERRORS as exc:
            logger.warning("%s: %s: %s", message, obsid, exc)
            extra_info[obsid]["error"] = f"{type(exc).__name__}: {exc}"
            continue
        for unit, (calls, extra) in plans.items():
            commands[obsid][unit] = calls
            final_paths[obsid][unit] = [p for c in calls for p in c.products]
            extra_info[obsid][unit] = extra
    return StepPlan(commands, final_paths, extra_info, message, _cores(num_cores), bool(disable_progress), timeout)


def stage_input(archive: Archive, obsid: str, timeout_s: float | None, **sections: Any) -> StageInput:
    """What the pipeline's stages get for ``obsid``, as in the archive flow: its OBSERVATION
    record, and the run's settings with DAXA's knobs as the steps' ``sections`` (each
    already checked by its own model). The run-level checks (archive roots, where ``out``
    is) belong to a run, not to a plan, so the settings are assembled without them."""
    unknown = set(sections) - set(ProcessingConfig.model_fields)
    if unknown:
        raise TypeError(f"no such run settings: {sorted(unknown)}")
    config = ProcessingConfig.model_construct(archive=archive.layout.raw_root, out=archive.layout.out_root, **sections)
    return StageInput(layout=archive.layout, config=config, sas_version=archive.sas_version,
                      record=archive.observation_record(obsid), timeout_s=timeout_s)


def _unit_plans(
    archive: Archive,
    obsid: str,
    timeout_s: float | None,
    stage: Stage,
    extra: Callable[[Unit], dict] | None = None,
    process_unscheduled: bool = True,
    part: str | None = None,
    **sections: Any,
) -> UnitPlans:
    """Each sub-exposure's calls of a unit ``stage`` (only those of step ``part``, when
    given), for the units the stage runs for (its own rule: instrument, SAS release). A unit
    whose build fails gets no calls and an error; the others are planned."""
    units = archive.units(obsid, process_unscheduled=process_unscheduled)  # first: no summary, no units
    si = stage_input(archive, obsid, timeout_s, **sections)
    out: UnitPlans = {}
    for un in [un for un in units if stage.applies(unit_input(si, un))]:
        try:
            calls = [c for c in stage.build(unit_input(si, un)) if part is None or c.step == part]
        except _OBS_ERRORS as exc:
            out[un.label] = ([], {"error": f"{type(exc).__name__}: {exc}"})
            continue
        out[un.label] = (calls, {"inst": un.inst, "exp_id": un.exp_id, **(extra(un) if extra else {})})
    return out


#: What a unit step's plan tells of one unit's products: (layout, ObsID, unit) -> DAXA's extra info.
UnitInfo = Callable[[ArchiveLayout, str, Unit], dict[str, Any]]


def _per_unit_plan(archive: Archive, step: str, info: UnitInfo, message: str, num_cores: int, disable_progress: bool,
                   timeout: Any, *, process_unscheduled: bool = True, part: str | None = None,
                   **sections: Any) -> StepPlan:
    """The plan of a step that runs per sub-exposure (``part``: only its calls of that name;
    ``sections``: the step's settings, as the run's config sections)."""
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        return _unit_plans(archive, obsid, t, stage_named(step), lambda un: info(archive.layout, obsid, un),
                           process_unscheduled, part=part, **sections)

    return _plan(archive, per_obs, message, num_cores, disable_progress, timeout)


def _seconds_knob(value: Any, name: str, default: float) -> tuple[bool, float]:
    """DAXA's with_smoothing/with_binning: a bool, or a Quantity that sets the value and turns it on."""
    if isinstance(value, bool):
        return value, default
    if isinstance(value, Quantity):
        try:
            return True, float(value.to_value(u.s))
        except u.UnitConversionError:
            raise ConfigError(f"{name}={value} must be a bool or a Quantity in seconds") from None
    raise ConfigError(f"{name}={value!r} must be a bool or an astropy Quantity in seconds")

