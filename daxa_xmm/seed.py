"""DAXA's seed API, by name and parameters, returning typed plans (nothing runs here).

Each function takes an :class:`~daxa_xmm.archive.Archive` and DAXA's knobs and returns a
:class:`~daxa_xmm.calls.StepPlan`, which unpacks as DAXA's 7-tuple ``(commands,
final_paths, extra_info, process_message, num_cores, disable_progress, timeout)``. Keys are
``[obsid][unit]``. Arguments are validated first (a bad knob raises ConfigError naming it);
then each observation is planned on its own: one whose summary is missing or unreadable
gets no calls and ``extra_info[obsid]["error"]``, and the others are unaffected (DAXA lost
the whole step's records to one bad summary).
"""

from __future__ import annotations

__all__ = [
    "NUM_CORES",
    "cif_build",
    "odf_ingest",
    "parse_odf_sum",
    "epchain",
    "emchain",
    "rgs_events",
    "rgs_angles",
    "cleaned_rgs_event_lists",
    "emanom",
    "parse_emanom_out",
    "espfilt",
    "cleaned_evt_lists",
    "merge_subexposures",
    "generate_images_expmaps",
]

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
from astropy.units import Quantity

from daxa_xmm.archive import Archive
from daxa_xmm.calls import SasCall, StepPlan
from daxa_xmm.daxa_records import daxa_step
from daxa_xmm.emanom import keep_ccds
from daxa_xmm.errors import ConfigError, DaxaXmmError
from daxa_xmm.filters import MOS_DEFAULT, PN_DEFAULT, to_ev
from daxa_xmm.step_inputs import cleaned_units
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.cifbuild import CifBuildConfig, cifbuild_calls
from daxa_xmm.steps.clean_events import CleanEventsConfig, clean_events_calls
from daxa_xmm.steps.emanom import EMANOM_MIN_SAS, emanom_calls
from daxa_xmm.steps.emchain import emchain_calls
from daxa_xmm.steps.epchain import epchain_calls
from daxa_xmm.steps.espfilt import EspfiltConfig, espfilt_calls
from daxa_xmm.steps.images import image_expmap_calls
from daxa_xmm.steps.merge import merge_calls, merge_streams
from daxa_xmm.steps.odfingest import odfingest_calls
from daxa_xmm.steps.rgsproc import rgsproc_calls

logger = logging.getLogger(__name__)

#: DAXA's default: 90% of this machine's cores, at least one.
NUM_CORES: int = max(1, int(0.9 * (os.cpu_count() or 1)))

_EPIC = ("PN", "M1", "M2")
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


# DAXA's defaults: espfilt's flare light-curve band, and the image bands (0.5-2, 2-10 keV)
_FLARE_LO, _FLARE_HI = _constant(2500, "eV"), _constant(8500, "eV")
_BANDS_LO, _BANDS_HI = _constant([0.5, 2.0], "keV"), _constant([2.0, 10.0], "keV")


def parse_odf_sum(sum_path: str | Path, obs_id: str | None = None) -> dict:
    """DAXA's parse_odf_sum: the summary as DAXA's nested dict (see daxa_xmm.summary)."""
    from daxa_xmm.summary import parse_odf_sum as _parse

    return _parse(sum_path, obs_id)


def parse_emanom_out(log: Any, acceptable_states: Sequence[str] = ("G", "I", "U")) -> list[int]:
    """DAXA's parse_emanom_out, fixed: the CCDs whose state is acceptable (daxa_xmm.emanom)."""
    from daxa_xmm.emanom import parse_emanom_out as _parse

    return _parse(log, acceptable_states=tuple(acceptable_states))


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


# --- setup ---------------------------------------------------------------------------------
def cif_build(
    obs_archive: Archive,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    analysis_date: str = "now",
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan cifbuild for every observation (observation date from the ODF's SUM.ASC).

    Args:
        obs_archive: the archive.
        num_cores: SAS processes at once.
        disable_progress: hide the progress bar.
        analysis_date: ``now`` or a date (YYYY-MM-DD) to reproduce an older calibration.
        timeout: per-observation limit, a Quantity of time.
    """
    archive = _archive(obs_archive)
    cfg = make_config(CifBuildConfig, analysis_date=analysis_date)
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        date = archive.observation_date(obsid)
        calls = cifbuild_calls(archive.layout, obsid, date, cfg, t)
        return {obsid: (calls, {"observation_date": date.strftime("%Y-%m-%d"), "analysis_date": cfg.analysis_date})}

    return _plan(archive, per_obs, "Generating calibration files", num_cores, disable_progress, timeout)


def odf_ingest(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan odfingest for every observation."""
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        rev = archive.revolution(obsid)
        return {obsid: (odfingest_calls(archive.layout, obsid, rev, t), {"revolution": rev})}

    return _plan(archive, per_obs, "Generating ODF summary files", num_cores, disable_progress, timeout)


# --- chains --------------------------------------------------------------------------------
def epchain(
    obs_archive: Archive,
    process_unscheduled: bool = True,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan epchain (out-of-time run, then the normal run) for every PN sub-exposure."""
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        summary = archive.summary_path(obsid)
        units = _units_of(archive, obsid, ("PN",), process_unscheduled)
        lay = archive.layout
        return _per_unit(
            units,
            lambda un: epchain_calls(lay, un, summary, archive.sas_version, t),
            lambda un: {
                "evt_list": str(lay.pn_events(obsid, un.exp_id)),
                "oot_evt_list": str(lay.pn_events(obsid, un.exp_id, oot=True)),
            },
        )

    return _plan(archive, per_obs, "Assembling PN and PN-OOT event lists", num_cores, disable_progress, timeout)


def emchain(
    obs_archive: Archive,
    process_unscheduled: bool = True,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan emchain for every MOS sub-exposure (one call each)."""
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        summary = archive.summary_path(obsid)
        lay = archive.layout
        return _per_unit(
            _units_of(archive, obsid, _MOS, process_unscheduled),
            lambda un: emchain_calls(lay, un, summary, t),
            lambda un: {"evt_list": str(lay.mos_events(obsid, un.inst, un.exp_id))},
        )

    return _plan(archive, per_obs, "Assembling MOS event lists", num_cores, disable_progress, timeout)


def _rgs(stage: str, message: str):
    def seed(
        obs_archive: Archive,
        process_unscheduled: bool = True,
        num_cores: int = NUM_CORES,
        disable_progress: bool = False,
        timeout: Quantity | None = None,
    ) -> StepPlan:
        archive = _archive(obs_archive)
        t = _timeout_s(timeout)

        def per_obs(obsid: str) -> UnitPlans:
            summary = archive.summary_path(obsid)
            lay = archive.layout
            return _per_unit(
                _units_of(archive, obsid, _RGS, process_unscheduled),
                lambda un: rgsproc_calls(lay, un, summary, (stage,), t),
                lambda un: {"evt_list": str(lay.rgs_events(obsid, un.inst, un.exp_id))} if stage == "filter" else {},
            )

        return _plan(archive, per_obs, message, num_cores, disable_progress, timeout)

    return seed


rgs_events = _rgs("events", "Assembling RGS event lists")
rgs_events.__name__ = rgs_events.__qualname__ = "rgs_events"
rgs_events.__doc__ = "Plan rgsproc stage 1:events for every RGS sub-exposure."
rgs_angles = _rgs("angles", "Calculating RGS event angles")
rgs_angles.__name__ = rgs_angles.__qualname__ = "rgs_angles"
rgs_angles.__doc__ = "Plan rgsproc stage 2:angles (same working folder as stage 1)."
cleaned_rgs_event_lists = _rgs("filter", "Cleaning RGS event lists")
cleaned_rgs_event_lists.__name__ = cleaned_rgs_event_lists.__qualname__ = "cleaned_rgs_event_lists"
cleaned_rgs_event_lists.__doc__ = "Plan rgsproc stage 3:filter; its event list is the product."


# --- cleaning ------------------------------------------------------------------------------
def emanom(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan emanom for every MOS sub-exposure (no calls, and a warning, before SAS 19)."""
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    if archive.sas_version < EMANOM_MIN_SAS:
        logger.warning("emanom needs SAS >= 19.0.0; SAS %s: no MOS CCD anomaly check", archive.sas_version)
    lay = archive.layout

    def per_obs(obsid: str) -> UnitPlans:
        return _per_unit(
            _units_of(archive, obsid, _MOS, True),
            lambda un: emanom_calls(lay, un, archive.sas_version, t),
            lambda un: {"log_path": str(lay.emanom_log(obsid, un.inst, un.exp_id))},
        )

    return _plan(archive, per_obs, "Checking for MOS CCD anomalous states", num_cores, disable_progress, timeout)


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


def espfilt(
    obs_archive: Archive,
    method: str = "histogram",
    with_smoothing: bool | Quantity = True,
    with_binning: bool | Quantity = True,
    ratio: float = 1.2,
    filter_lo_en: Quantity = _FLARE_LO,
    filter_hi_en: Quantity = _FLARE_HI,
    range_scale: dict | None = None,
    allowed_sigma: float = 3.0,
    gauss_fit_lims: tuple[float, float] = (0.1, 6.5),
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan espfilt for every PN and MOS sub-exposure.

    Args:
        method: ``histogram`` or ``ratio``.
        with_smoothing: smooth the light curve; a Quantity (1-60 s) sets the smoothing too.
        with_binning: bin the light curve; a Quantity (>= 1 s) sets the bin size too.
        ratio: flaring ratio (ratio method).
        filter_lo_en: lower energy of the flare light curve (1-32766 eV).
        filter_hi_en: upper energy (2-32767 eV), above filter_lo_en.
        range_scale: ``{'pn': 15, 'mos': 6}`` by default.
        allowed_sigma: sigma limit for unflared rates.
        gauss_fit_lims: Gaussian fit limits (0-10).
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)
    smooth_on, smooth = _seconds_knob(with_smoothing, "with_smoothing", 51)
    bin_on, binsize = _seconds_knob(with_binning, "with_binning", 60)
    lo, hi = to_ev(filter_lo_en, "filter_lo_en"), to_ev(filter_hi_en, "filter_hi_en")
    if smooth != int(smooth):
        raise ConfigError(f"with_smoothing={with_smoothing}: espfilt's smooth is a whole number")
    values: dict[str, Any] = dict(
        method=method,
        with_smoothing=smooth_on,
        smooth=int(smooth),
        with_binning=bin_on,
        binsize_s=binsize,
        ratio=ratio,
        filter_lo_ev=int(round(lo)) if lo is not None else None,
        filter_hi_ev=int(round(hi)) if hi is not None else None,
        allowed_sigma=allowed_sigma,
        gauss_fit_lims=tuple(gauss_fit_lims) if isinstance(gauss_fit_lims, (list, tuple)) else gauss_fit_lims,
    )
    if range_scale is not None:
        values["range_scale"] = range_scale
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
    pn_filt_expr: str | Sequence[str] = PN_DEFAULT,
    mos_filt_expr: str | Sequence[str] = MOS_DEFAULT,
    filt_mos_anom_state: bool = False,
    acc_mos_anom_states: Sequence[str] = ("G", "I", "U"),
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan the evselect cleaning of every PN (and its OOT list) and MOS sub-exposure.

    Args:
        lo_en: lower energy bound (Quantity or ``"0.5 keV"``); both bounds or neither.
        hi_en: upper energy bound.
        pn_filt_expr: PN selection (a list is joined with ``&&``).
        mos_filt_expr: MOS selection.
        filt_mos_anom_state: keep only MOS CCDs whose emanom state is accepted; needs the
            emanom log (a unit without it gets an error, not a silent full list).
        acc_mos_anom_states: accepted emanom states.
    """
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)

    def seq(v: Any) -> Any:
        return tuple(v) if isinstance(v, (list, tuple)) else v

    cfg = make_config(
        CleanEventsConfig,
        lo_ev=to_ev(lo_en, "lo_en"),
        hi_ev=to_ev(hi_en, "hi_en"),
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
