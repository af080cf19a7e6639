"""What the DAXA-named plan functions of :mod:`daxa_xmm.seed` share: argument checks and planning.

Every seed function validates DAXA's common knobs the same way (``obs_archive`` an
:class:`~daxa_xmm.archive.Archive`, ``num_cores`` a whole number >= 1, ``timeout`` a Quantity
of time) and builds its :class:`~daxa_xmm.calls.StepPlan` the same way: one observation, or
one unit, whose planning fails gets no calls and an ``error`` in its ``extra_info`` while
the others are planned. Those pieces live here, apart from the steps themselves
(:mod:`daxa_xmm.seed` for the preprocessing steps, :mod:`daxa_xmm.seed_products` for
flare filtering, cleaning, merging and images).
"""

from __future__ import annotations

__all__ = [
    "NUM_CORES",
    "UnitPlans",
]

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import astropy.units as u
from astropy.units import Quantity

from daxa_xmm.archive import Archive
from daxa_xmm.calls import SasCall, StepPlan
from daxa_xmm.errors import ConfigError, DaxaXmmError
from daxa_xmm.models import EPIC

logger = logging.getLogger(__name__)

#: DAXA's default: 90% of this machine's cores, at least one.
NUM_CORES: int = max(1, int(0.9 * (os.cpu_count() or 1)))

_EPIC = EPIC
_MOS = ("M1", "M2")
_RGS = ("R1", "R2")
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
    """Per-unit timeout: a Quantity of time (or None), converted to seconds once."""
    if timeout is None:
        return None
    if not isinstance(timeout, Quantity) or not timeout.isscalar:
        raise ConfigError(f"timeout={timeout!r} must be an astropy Quantity of time, e.g. 2 * u.hour")
    try:
        seconds = float(timeout.to_value(u.s))
    except u.UnitConversionError:
        raise ConfigError(f"timeout={timeout} has no time unit (physical type {timeout.unit.physical_type})") from None
    if not seconds > 0:
        raise ConfigError(f"timeout={timeout} must be positive")
    return seconds


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
            final_paths[obsid][unit] = [p for c in calls for p in c.products] + list(extra.pop("_products", []))
            extra_info[obsid][unit] = extra
    return StepPlan(commands, final_paths, extra_info, message, _cores(num_cores), bool(disable_progress), timeout)


def _units_of(archive: Archive, obsid: str, insts: tuple[str, ...], process_unscheduled: bool) -> list:
    return [un for un in archive.units(obsid, instruments=insts, process_unscheduled=process_unscheduled) if un.inst in insts]


def _per_unit(units: list, build: Callable[[Any], list[SasCall]], extra: Callable[[Any], dict] | None = None) -> UnitPlans:
    """Build each unit's calls; a unit whose build fails gets no calls and an error."""
    out: UnitPlans = {}
    for un in units:
        try:
            calls = build(un)
        except _OBS_ERRORS as exc:
            out[un.label] = ([], {"error": f"{type(exc).__name__}: {exc}"})
            continue
        info = {"inst": un.inst, "exp_id": un.exp_id}
        if extra:
            info.update(extra(un))
        out[un.label] = (calls, info)
    return out


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

