"""The product steps of DAXA's seed API: flare filtering, cleaning, merging, images.

:func:`espfilt`, :func:`cleaned_evt_lists`, :func:`merge_subexposures` and
:func:`generate_images_expmaps` plan the steps that turn the chains' event lists into
DAXA's products. They follow the conventions of :mod:`daxa_xmm.daxa.plans` (which re-exports
them, so ``daxa_xmm.daxa.plans.espfilt`` is the public name) and use its shared checks and
planning from :mod:`daxa_xmm.daxa.plan_support`.
"""

from __future__ import annotations

__all__ = [
    "espfilt",
    "cleaned_evt_lists",
    "merge_subexposures",
    "generate_images_expmaps",
]

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from astropy.units import Quantity

from daxa_xmm.daxa.archive import Archive
from daxa_xmm.daxa.plan_support import (
    NUM_CORES,
    UnitPlans,
    _archive,
    _constant,
    _per_unit_plan,
    _plan,
    _seconds_knob,
    _timeout_s,
    stage_input,
)
from daxa_xmm.daxa.step_inputs import cleaned_units
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.odf.selection import UNIT_INSTRUMENTS
from daxa_xmm.pipeline.stages import band_inputs, daxa_function, stage_named
from daxa_xmm.sas.calls import StepPlan
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.emanom import EMANOM_MIN_SAS
from daxa_xmm.steps.espfilt import EspfiltConfig
from daxa_xmm.steps.images import ImageConfig
from daxa_xmm.steps.spec import Stage, StageInput

logger = logging.getLogger(__name__)


# --- cleaning ------------------------------------------------------------------------------
_ESPFILT, _CLEAN, _IMAGES = EspfiltConfig(), CleanEventsConfig(), ImageConfig()
# DAXA's defaults are the models': espfilt's light-curve band, the image bands as two arrays
_FLARE_LO, _FLARE_HI = _ESPFILT.filter_lo_en, _ESPFILT.filter_hi_en
_BANDS_LO = _constant([lo.to_value("keV") for lo, _ in _IMAGES.bands], "keV")
_BANDS_HI = _constant([hi.to_value("keV") for _, hi in _IMAGES.bands], "keV")


def espfilt(
    obs_archive: Archive,
    method: str = _ESPFILT.method,
    with_smoothing: bool | Quantity = _ESPFILT.with_smoothing,
    with_binning: bool | Quantity = _ESPFILT.with_binning,
    ratio: float = _ESPFILT.ratio,
    filter_lo_en: Quantity = _FLARE_LO,
    filter_hi_en: Quantity = _FLARE_HI,
    range_scale: dict | None = None,
    allowed_sigma: float = _ESPFILT.allowed_sigma,
    gauss_fit_lims: tuple[float, float] = _ESPFILT.gauss_fit_lims,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan espfilt for every PN and MOS sub-exposure.

    DAXA's arguments, onto :class:`~daxa_xmm.steps.espfilt.EspfiltConfig` (whose fields
    describe them): ``with_smoothing``/``with_binning`` a bool, or a Quantity that sets
    ``smooth``/``binsize`` and turns it on; ``range_scale`` ``{'pn': ..., 'mos': ...}``.
    """
    archive = _archive(obs_archive)
    _timeout_s(timeout)  # checked first, as before the knobs
    smooth_on, smooth = _seconds_knob(with_smoothing, "with_smoothing", _ESPFILT.smooth)
    bin_on, binsize = _seconds_knob(with_binning, "with_binning", float(_ESPFILT.binsize.to_value("s")))
    if smooth != int(smooth):
        raise ConfigError(f"with_smoothing={with_smoothing}: espfilt's smooth is a whole number")
    scale = {"pn": _ESPFILT.range_scale_pn, "mos": _ESPFILT.range_scale_mos} if range_scale is None else range_scale
    if not isinstance(scale, dict) or set(scale) != {"pn", "mos"}:
        raise ConfigError(f"range_scale={range_scale!r}: needs exactly the keys 'pn' and 'mos'")
    values: dict[str, Any] = dict(
        method=method,
        with_smoothing=smooth_on,
        smooth=int(smooth),
        with_binning=bin_on,
        binsize=f"{binsize:g} s",
        ratio=ratio,
        filter_lo_en=filter_lo_en,
        filter_hi_en=filter_hi_en,
        range_scale_pn=scale["pn"],
        range_scale_mos=scale["mos"],
        allowed_sigma=allowed_sigma,
        gauss_fit_lims=tuple(gauss_fit_lims) if isinstance(gauss_fit_lims, (list, tuple)) else gauss_fit_lims,
    )
    cfg = make_config(EspfiltConfig, **values)

    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"gti_path": str(lay.espfilt_gti(obsid, un.inst, un.exp_id)),
                "hist_path": str(lay.espfilt_hist(obsid, un.inst, un.exp_id))}

    return _per_unit_plan(archive, "espfilt", info, "Finding PN/MOS soft-proton flares", num_cores, disable_progress,
                          timeout, espfilt=cfg)


def cleaned_evt_lists(
    obs_archive: Archive,
    lo_en: Quantity | None = None,
    hi_en: Quantity | None = None,
    pn_filt_expr: str | Sequence[str] = _CLEAN.pn_filt_expr,
    mos_filt_expr: str | Sequence[str] = _CLEAN.mos_filt_expr,
    filt_mos_anom_state: bool = _CLEAN.filt_mos_anom_state,
    acc_mos_anom_states: Sequence[str] = _CLEAN.acc_mos_anom_states,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan the evselect cleaning of every PN (and its OOT list) and MOS sub-exposure.

    DAXA's arguments are :class:`~daxa_xmm.steps.clean_events.CleanEventsConfig`'s fields.
    With ``filt_mos_anom_state`` a unit needs its emanom log (without it: an error, not a
    silent full list).
    """
    archive = _archive(obs_archive)
    _timeout_s(timeout)  # checked first, as before the knobs

    def seq(v: Any) -> Any:
        return tuple(v) if isinstance(v, (list, tuple)) else v

    cfg = make_config(
        CleanEventsConfig,
        lo_en=lo_en,
        hi_en=hi_en,
        pn_filt_expr=seq(pn_filt_expr),
        mos_filt_expr=seq(mos_filt_expr),
        filt_mos_anom_state=filt_mos_anom_state,
        acc_mos_anom_states=seq(acc_mos_anom_states),
    )
    if cfg.filt_mos_anom_state and archive.sas_version < EMANOM_MIN_SAS:
        logger.warning("filt_mos_anom_state ignored: emanom needs SAS >= 19.0.0 (SAS %s)", archive.sas_version)

    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"evt_list": str(lay.clean_events(obsid, un.inst, un.exp_id))}

    # with filt_mos_anom_state, a MOS unit's build reads its emanom log: one not made yet is
    # an error for that unit, not a silently unfiltered list
    return _per_unit_plan(archive, "cleaned_evt_lists", info, "Generating cleaned PN/MOS event lists", num_cores,
                          disable_progress, timeout, clean=cfg)


# --- products ------------------------------------------------------------------------------
def merge_subexposures(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan the per-instrument merge of cleaned and espfilt all-good lists (PN also its OOT lists).

    Once cleaning has run, only the sub-exposures it cleaned are merged (as in DAXA). An
    instrument with one sub-exposure gets one placement, a copy (its ``extra_info`` holds
    ``single_source`` and ``dest``).
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    stage = stage_named("merge_subexposures")

    def per_obs(obsid: str) -> UnitPlans:
        units = archive.units(obsid)  # first: without a summary there are no units
        si = stage_input(archive, obsid, t)
        manifest = archive.manifest(obsid)
        if any(daxa_function(r.step) == "cleaned_evt_lists" for r in manifest.records.values()):
            units = cleaned_units(manifest, units)  # as DAXA: merge what was cleaned
        out: UnitPlans = {}
        for its in _instrument_inputs(si, units, stage):
            for call in stage.build(its):  # labelled <obsid><inst>-<kind>: a merge chain or a copy
                calls, info = out.setdefault(call.unit, ([], {"inst": its.the_inst, "kind": call.unit.split("-", 1)[1]}))
                calls.append(call)
                info["sources"] = list(call.extra["sources"])
                if call.placed_from is not None:
                    info["single_source"] = str(call.placed_from)
                if call.outputs[0].dest is not None:  # the last link (or the copy) makes the merged list
                    info["dest"] = str(call.outputs[0].dest)
        return out

    return _plan(archive, per_obs, "Merging sub-exposure event lists", num_cores, disable_progress, timeout)


def _bands(lo_en: Any, hi_en: Any) -> list[tuple[Any, Any]]:
    """DAXA's two arrays of band edges as (lower, upper) pairs, for ImageConfig to check."""
    def edges(v: Any) -> list[Any]:
        return list(v) if isinstance(v, (list, tuple)) or (isinstance(v, Quantity) and not v.isscalar) else [v]

    los, his = edges(lo_en), edges(hi_en)
    if len(los) != len(his) or not los:
        raise ConfigError(f"lo_en and hi_en must hold the same number of band edges (got {len(los)} and {len(his)})")
    return list(zip(los, his, strict=True))


def _instrument_inputs(si: StageInput, units: Sequence[Unit], stage: Stage) -> list[StageInput]:
    """One input per instrument of ``units`` that ``stage`` runs for, in the table's order."""
    insts = [i for i in UNIT_INSTRUMENTS if any(un.inst == i for un in units)]
    inputs = [dataclasses.replace(si, inst=i, units=tuple(un for un in units if un.inst == i)) for i in insts]
    return [its for its in inputs if stage.applies(its)]


def generate_images_expmaps(
    obs_archive: Archive,
    lo_en: Quantity = _BANDS_LO,
    hi_en: Quantity = _BANDS_HI,
    num_cores: int = NUM_CORES,
    *,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan a count image and an exposure map per EPIC instrument and band (DAXA's
    arguments; ``disable_progress`` and ``timeout`` are not DAXA's, so keyword-only).

    Args:
        lo_en: lower band edges (default 0.5 and 2 keV).
        hi_en: upper band edges (default 2 and 10 keV), one per lower edge.
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    cfg = make_config(ImageConfig, bands=_bands(lo_en, hi_en))
    stage = stage_named("generate_images_expmaps")

    def per_obs(obsid: str) -> UnitPlans:
        units = archive.units(obsid)  # first: without a summary there are no units
        si = stage_input(archive, obsid, t, images=cfg)
        out: UnitPlans = {}
        for its in _instrument_inputs(si, units, stage):
            for band in band_inputs(its):
                calls = list(stage.build(band))
                out[calls[0].unit] = (calls, {"inst": its.the_inst, "band_ev": list(band.band or ())})
        return out

    return _plan(archive, per_obs, "Generating images and exposure maps", num_cores, disable_progress, timeout)
