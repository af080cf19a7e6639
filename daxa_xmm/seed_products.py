"""The product steps of DAXA's seed API: flare filtering, cleaning, merging, images.

:func:`espfilt`, :func:`cleaned_evt_lists`, :func:`merge_subexposures` and
:func:`generate_images_expmaps` plan the steps that turn the chains' event lists into
DAXA's products. They follow the conventions of :mod:`daxa_xmm.seed` (which re-exports
them, so ``daxa_xmm.seed.espfilt`` is the public name) and use its shared checks and
planning from :mod:`daxa_xmm.seed_support`.
"""

from __future__ import annotations

__all__ = [
    "espfilt",
    "cleaned_evt_lists",
    "merge_subexposures",
    "generate_images_expmaps",
]

import logging
from collections.abc import Sequence
from typing import Any

from astropy.units import Quantity

from daxa_xmm.archive import Archive
from daxa_xmm.calls import SasCall, StepPlan
from daxa_xmm.daxa_records import daxa_step
from daxa_xmm.emanom import keep_ccds
from daxa_xmm.errors import ConfigError
from daxa_xmm.filters import to_ev
from daxa_xmm.seed_support import (
    _EPIC,
    _MOS,
    NUM_CORES,
    UnitPlans,
    _archive,
    _constant,
    _per_unit,
    _plan,
    _seconds_knob,
    _timeout_s,
    _units_of,
)
from daxa_xmm.step_inputs import cleaned_units
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.clean_events import CleanEventsConfig, clean_events_calls
from daxa_xmm.steps.emanom import EMANOM_MIN_SAS
from daxa_xmm.steps.espfilt import EspfiltConfig, espfilt_calls
from daxa_xmm.steps.images import ImageConfig, image_expmap_calls
from daxa_xmm.steps.merge import merge_calls, merge_streams

logger = logging.getLogger(__name__)

# DAXA's defaults: espfilt's flare light-curve band, and the image bands (0.5-2, 2-10 keV)


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
    t = _timeout_s(timeout)
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
    lay = archive.layout

    def per_obs(obsid: str) -> UnitPlans:
        return _per_unit(
            _units_of(archive, obsid, _EPIC, True),
            lambda un: espfilt_calls(lay, un, cfg, archive.sas_version, t),
            lambda un: {
                "gti_path": str(lay.espfilt_gti(obsid, un.inst, un.exp_id)),
                "hist_path": str(lay.espfilt_hist(obsid, un.inst, un.exp_id)),
            },
        )

    return _plan(archive, per_obs, "Finding PN/MOS soft-proton flares", num_cores, disable_progress, timeout)


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
    t = _timeout_s(timeout)

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
    anom = cfg.filt_mos_anom_state
    if anom and archive.sas_version < EMANOM_MIN_SAS:
        logger.warning("filt_mos_anom_state ignored: emanom needs SAS >= 19.0.0 (SAS %s)", archive.sas_version)
        anom = False
    lay = archive.layout

    def build(un: Any) -> list[SasCall]:
        ccds = None
        if anom and un.inst in _MOS:
            log = lay.emanom_log(un.obsid, un.inst, un.exp_id)
            if not log.is_file():
                raise ConfigError(f"{un.label}: filt_mos_anom_state needs the emanom log {log} (run emanom first)")
            ccds = keep_ccds(log, un.ccds, cfg.acc_mos_anom_states)
        return clean_events_calls(lay, un, cfg, ccds, t)

    def per_obs(obsid: str) -> UnitPlans:
        return _per_unit(
            _units_of(archive, obsid, _EPIC, True),
            build,
            lambda un: {"evt_list": str(lay.clean_events(obsid, un.inst, un.exp_id))},
        )

    return _plan(archive, per_obs, "Generating cleaned PN/MOS event lists", num_cores, disable_progress, timeout)


# --- products ------------------------------------------------------------------------------
def merge_subexposures(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan the per-instrument merge of cleaned and espfilt all-good lists (PN also its OOT lists).

    Once cleaning has run, only the sub-exposures it cleaned are merged (as in DAXA). An
    instrument with one sub-exposure gets no calls; its ``extra_info`` holds
    ``single_source`` and ``dest``, and the runner copies it with
    :func:`daxa_xmm.steps.merge.place_single`.
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    lay = archive.layout

    def per_obs(obsid: str) -> UnitPlans:
        units = _units_of(archive, obsid, _EPIC, True)
        manifest = archive.manifest(obsid)
        if any(daxa_step(r.step) == "cleaned_evt_lists" for r in manifest.records.values()):
            units = cleaned_units(manifest, units)  # as DAXA: merge what was cleaned
        out: UnitPlans = {}
        for inst in _EPIC:
            exps = [un.exp_id for un in units if un.inst == inst]
            if not exps:
                continue
            for kind, sources in merge_streams(lay, obsid, inst, exps, oot_allevc=archive.sas_version >= (20, 0, 0)):
                label = f"{obsid}{inst}-{kind}"
                plan = merge_calls(lay, obsid, label, sources, lay.merged_events(obsid, inst, kind), t)
                info: dict[str, Any] = {"inst": inst, "kind": kind, "sources": [str(s) for s in sources], "dest": str(plan.dest)}
                if plan.single_source is not None:
                    info["single_source"] = str(plan.single_source)
                    info["_products"] = [plan.dest]
                out[label] = (list(plan.calls), info)
        return out

    return _plan(archive, per_obs, "Merging sub-exposure event lists", num_cores, disable_progress, timeout)


def _bands(lo_en: Any, hi_en: Any) -> list[tuple[float, float]]:
    def evs(v: Any, name: str) -> list[float]:
        if isinstance(v, Quantity) and not v.isscalar:
            return [to_ev(x, name) for x in v]  # type: ignore[misc]
        if isinstance(v, (list, tuple)):
            return [to_ev(x, name) for x in v]  # type: ignore[misc]
        return [to_ev(v, name)]  # type: ignore[list-item]

    los, his = evs(lo_en, "lo_en"), evs(hi_en, "hi_en")
    if len(los) != len(his) or not los:
        raise ConfigError(f"lo_en and hi_en must hold the same number of band edges (got {len(los)} and {len(his)})")
    for lo, hi in zip(los, his, strict=True):
        if not hi > lo:
            raise ConfigError(f"band {lo:g}-{hi:g} eV: each hi_en must be larger than its lo_en")
    return list(zip(los, his, strict=True))


def generate_images_expmaps(
    obs_archive: Archive,
    lo_en: Quantity = _BANDS_LO,
    hi_en: Quantity = _BANDS_HI,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan a count image and an exposure map per EPIC instrument and band.

    Args:
        lo_en: lower band edges (default 0.5 and 2 keV).
        hi_en: upper band edges (default 2 and 10 keV), one per lower edge.
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    bands = _bands(lo_en, hi_en)
    lay = archive.layout

    def per_obs(obsid: str) -> UnitPlans:
        insts = sorted({un.inst for un in _units_of(archive, obsid, _EPIC, True)}, key=_EPIC.index)
        out: UnitPlans = {}
        for inst in insts:
            for lo, hi in bands:
                calls = image_expmap_calls(lay, obsid, inst, lo, hi, timeout_s=t)
                out[calls[0].unit] = (calls, {"inst": inst, "band_ev": [lo, hi]})
        return out

    return _plan(archive, per_obs, "Generating images and exposure maps", num_cores, disable_progress, timeout)
