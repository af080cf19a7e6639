"""DAXA's seed API, by name and parameters, returning typed plans (nothing runs here).

Each function takes an :class:`~daxa_xmm.daxa.archive.Archive` and DAXA's knobs and returns a
:class:`~daxa_xmm.sas.calls.StepPlan`, which unpacks as DAXA's 7-tuple ``(commands,
final_paths, extra_info, process_message, num_cores, disable_progress, timeout)``. Keys are
``[obsid][unit]``. Arguments are validated first (a bad knob raises ConfigError naming it);
then each observation is planned on its own: one whose summary is missing or unreadable
gets no calls and ``extra_info[obsid]["error"]``, and the others are unaffected (DAXA lost
the whole step's records to one bad summary).

Every plan is built by the pipeline's table (:mod:`daxa_xmm.pipeline.stages`), so its calls are the
archive flow's. This module holds the preprocessing steps (cifbuild to emanom); the product
steps (espfilt to images) are in :mod:`daxa_xmm.daxa.product_plans` and re-exported here, and the
argument checks and planning they all share are in :mod:`daxa_xmm.daxa.plan_support`.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astropy.units import Quantity

from daxa_xmm.daxa.archive import Archive
from daxa_xmm.daxa.plan_support import NUM_CORES, UnitPlans, _archive, _per_unit_plan, _plan, _timeout_s, stage_input
from daxa_xmm.daxa.product_plans import cleaned_evt_lists, espfilt, generate_images_expmaps, merge_subexposures
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.stages import stage_named
from daxa_xmm.sas.calls import StepPlan
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.cifbuild import CifBuildConfig
from daxa_xmm.steps.emanom import EMANOM_MIN_SAS
from daxa_xmm.steps.rgsproc import RGS_STAGES

logger = logging.getLogger(__name__)


def parse_odf_sum(sum_path: str | Path, obs_id: str | None = None) -> dict:
    """DAXA's parse_odf_sum: the summary as DAXA's nested dict (see daxa_xmm.odf.summary)."""
    from daxa_xmm.odf.summary import parse_odf_sum as _parse

    return _parse(sum_path, obs_id)


def parse_emanom_out(log_file_path: str | Path, acceptable_states: Sequence[str] = ("G", "I", "U")) -> list[int]:
    """DAXA's parse_emanom_out, fixed: the CCDs whose state is acceptable (daxa_xmm.sas.emanom_log)."""
    from daxa_xmm.sas.emanom_log import parse_emanom_out as _parse

    return _parse(log_file_path, acceptable_states=tuple(acceptable_states))


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
    date = make_config(CifBuildConfig, analysis_date=analysis_date).analysis_date
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        si = stage_input(archive, obsid, t, analysis_date=date)
        info = {"observation_date": si.record.start.strftime("%Y-%m-%d"), "analysis_date": date}
        return {obsid: (list(stage_named("cif_build").build(si)), info)}

    return _plan(archive, per_obs, "Generating calibration files", num_cores, disable_progress, timeout)


def odf_ingest(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan odfingest for every observation."""
    archive = _archive(obs_archive)
    t = _timeout_s(timeout)

    def per_obs(obsid: str) -> UnitPlans:
        si = stage_input(archive, obsid, t)
        return {obsid: (list(stage_named("odf_ingest").build(si)), {"revolution": si.record.revolution})}

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
    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"evt_list": str(lay.pn_events(obsid, un.exp_id)), "oot_evt_list": str(lay.pn_events(obsid, un.exp_id, oot=True))}

    return _per_unit_plan(_archive(obs_archive), "epchain", info, "Assembling PN and PN-OOT event lists", num_cores,
                          disable_progress, timeout, process_unscheduled=process_unscheduled)


def emchain(
    obs_archive: Archive,
    process_unscheduled: bool = True,
    num_cores: int = NUM_CORES,
    disable_progress: bool = False,
    timeout: Quantity | None = None,
) -> StepPlan:
    """Plan emchain for every MOS sub-exposure (one call each)."""
    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"evt_list": str(lay.mos_events(obsid, un.inst, un.exp_id))}

    return _per_unit_plan(_archive(obs_archive), "emchain", info, "Assembling MOS event lists", num_cores,
                          disable_progress, timeout, process_unscheduled=process_unscheduled)


def _rgs_plan(stage: str, message: str, obs_archive: Archive, process_unscheduled: bool, num_cores: int,
              disable_progress: bool, timeout: Quantity | None) -> StepPlan:
    """The plan of one of rgsproc's three stages: the table's rgsproc calls of that stage
    only (each DAXA function runs one); the last one's event list is the product."""
    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"evt_list": str(lay.rgs_events(obsid, un.inst, un.exp_id))} if stage == "filter" else {}

    return _per_unit_plan(_archive(obs_archive), "rgsproc", info, message, num_cores, disable_progress, timeout,
                          process_unscheduled=process_unscheduled, part=RGS_STAGES[stage][1])


def rgs_events(obs_archive: Archive, process_unscheduled: bool = True, num_cores: int = NUM_CORES,
               disable_progress: bool = False, timeout: Quantity | None = None) -> StepPlan:
    """Plan rgsproc stage 1:events for every RGS sub-exposure."""
    return _rgs_plan("events", "Assembling RGS event lists", obs_archive, process_unscheduled, num_cores,
                     disable_progress, timeout)


def rgs_angles(obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False,
               timeout: Quantity | None = None, *, process_unscheduled: bool = True) -> StepPlan:
    """Plan rgsproc stage 2:angles (same working folder as stage 1). ``process_unscheduled``
    (not DAXA's, which takes every unit stage 1 made) must match stage 1's."""
    return _rgs_plan("angles", "Calculating RGS event angles", obs_archive, process_unscheduled, num_cores,
                     disable_progress, timeout)


def cleaned_rgs_event_lists(obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False,
                            timeout: Quantity | None = None, *, process_unscheduled: bool = True) -> StepPlan:
    """Plan rgsproc stage 3:filter; its event list is the product. ``process_unscheduled``
    as in :func:`rgs_angles`."""
    return _rgs_plan("filter", "Cleaning RGS event lists", obs_archive, process_unscheduled, num_cores,
                     disable_progress, timeout)


# --- cleaning ------------------------------------------------------------------------------
def emanom(
    obs_archive: Archive, num_cores: int = NUM_CORES, disable_progress: bool = False, timeout: Quantity | None = None
) -> StepPlan:
    """Plan emanom for every MOS sub-exposure (no calls, and a warning, before SAS 19)."""
    archive = _archive(obs_archive)
    if archive.sas_version < EMANOM_MIN_SAS:
        logger.warning("emanom needs SAS >= 19.0.0; SAS %s: no MOS CCD anomaly check", archive.sas_version)

    def info(lay: ArchiveLayout, obsid: str, un: Unit) -> dict[str, Any]:
        return {"log_path": str(lay.emanom_log(obsid, un.inst, un.exp_id))}

    return _per_unit_plan(archive, "emanom", info, "Checking for MOS CCD anomalous states", num_cores,
                          disable_progress, timeout)
