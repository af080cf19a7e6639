"""Which SAS calls one observation needs, chain by chain, from a ProcessingConfig.

The per-observation flow runs these chains and ``--dry-run`` prints them, so both come from
here and cannot drift apart. Pure: builds calls, runs nothing (reading the observation's
summary file is the only disk access, in :func:`plan_observation`).
"""

from __future__ import annotations

__all__ = ["head_calls", "epic_unit_calls", "accepted_ccds", "rgs_unit_calls", "instrument_calls", "plan_observation"]

from collections.abc import Sequence
from pathlib import Path

from daxa_xmm.calls import SasCall
from daxa_xmm.config import ProcessingConfig
from daxa_xmm.emanom import emanom_supported, keep_ccds
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.models import EPIC, ObservationRecord, Unit
from daxa_xmm.sasversion import SasVersion, parse_sas_version
from daxa_xmm.selection import select_units
from daxa_xmm.steps.cifbuild import cifbuild_calls
from daxa_xmm.steps.clean_events import clean_events_calls
from daxa_xmm.steps.emanom import emanom_calls
from daxa_xmm.steps.emchain import emchain_calls
from daxa_xmm.steps.epchain import epchain_calls
from daxa_xmm.steps.espfilt import espfilt_calls
from daxa_xmm.steps.images import image_expmap_calls
from daxa_xmm.steps.merge import MergePlan, merge_calls, merge_streams
from daxa_xmm.steps.odfingest import odfingest_calls
from daxa_xmm.steps.rgsproc import rgsproc_calls
from daxa_xmm.summary import read_observation_record, read_odf_summary


def head_calls(layout: ArchiveLayout, record: ObservationRecord, config: ProcessingConfig) -> list[SasCall]:
    """cifbuild then odfingest: what every later call of the observation reads."""
    timeout = config.timeout_s()
    return cifbuild_calls(layout, record.obsid, record.start, config.cifbuild(), timeout) + odfingest_calls(
        layout, record.obsid, record.revolution, timeout
    )


def epic_unit_calls(
    layout: ArchiveLayout,
    unit: Unit,
    config: ProcessingConfig,
    sas_version: SasVersion,
    summary: Path,
    accepted_ccds: Sequence[int] | None = None,
) -> list[list[SasCall]]:
    """One PN or MOS sub-exposure as three groups: the chain (+ emanom), espfilt, evselect.

    ``accepted_ccds`` (MOS, from emanom) is only known once emanom has run; the cleaning
    group is rebuilt with it then.
    """
    timeout = config.timeout_s()
    if unit.inst == "PN":
        first = epchain_calls(layout, unit, summary, sas_version, timeout)
    else:
        first = emchain_calls(layout, unit, summary, timeout)
        if emanom_supported(sas_version):
            first += emanom_calls(layout, unit, sas_version, timeout)
    espf = espfilt_calls(layout, unit, config.espfilt.to_step(), sas_version, timeout)
    clean = clean_events_calls(layout, unit, config.clean.to_step(), accepted_ccds, timeout)
    return [first, espf, clean]


def accepted_ccds(layout: ArchiveLayout, unit: Unit, config: ProcessingConfig, sas_version: SasVersion) -> list[int] | None:
    """The MOS CCDs emanom accepted, when the run filters on them; else None (all CCDs).

    Read once emanom has run: the cleaning group is then rebuilt with them.
    """
    if unit.inst == "PN" or not config.clean.filt_mos_anom_state or not emanom_supported(sas_version):
        return None
    log_path = layout.emanom_log(unit.obsid, unit.inst, unit.exp_id)
    return keep_ccds(log_path, unit.ccds, config.clean.acc_mos_anom_states)


def rgs_unit_calls(layout: ArchiveLayout, unit: Unit, config: ProcessingConfig, summary: Path) -> list[SasCall]:
    """One RGS sub-exposure: rgsproc's events, angles and filter stages."""
    return rgsproc_calls(layout, unit, summary, timeout_s=config.timeout_s())


def instrument_calls(
    layout: ArchiveLayout,
    obsid: str,
    inst: str,
    units: Sequence[Unit],
    config: ProcessingConfig,
    sas_version: SasVersion | str,
) -> tuple[list[MergePlan], list[list[SasCall]]]:
    """One EPIC instrument's merges (cleaned and all-good lists, PN's out-of-time ones too)
    and its band products, made with the run's own selection expression.

    Returns:
        The merge plans, then one ``[image, expmap]`` pair per band (bands are independent).
    """
    timeout = config.timeout_s()
    sasv = parse_sas_version(sas_version) if isinstance(sas_version, str) else sas_version
    merges = [
        merge_calls(layout, obsid, f"{obsid}{inst}-{kind}", sources, layout.merged_events(obsid, inst, kind), timeout)
        for kind, sources in merge_streams(layout, obsid, inst, [u.exp_id for u in units],
                                           oot_allevc=sasv >= (20, 0, 0))
    ]
    image_cfg = config.images.to_step()
    clean = config.clean.to_step()
    user_expr = clean.pn_filt_expr if inst == "PN" else clean.mos_filt_expr
    bands = [image_expmap_calls(layout, obsid, inst, lo, hi, image_cfg, timeout, user_expr=user_expr)
             for lo, hi in config.images.bands_ev()]
    return merges, bands


def plan_observation(
    layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: SasVersion
) -> list[tuple[str, SasCall | None]]:
    """Every call the run would make for ``obsid``, as (note, call) pairs, in order.

    Which units exist is only known from the odfingest summary: when no earlier run made
    one, the plan stops after odfingest with a note saying so.
    """
    out: list[tuple[str, SasCall | None]] = []
    try:
        record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
    except DaxaXmmError as exc:
        return [(f"cannot plan {obsid}: {exc}", None)]
    out += [("", c) for c in head_calls(layout, record, config)]
    summary_path = layout.summary(obsid, record.revolution)
    if not summary_path.exists():
        out.append(("the units of this observation are known once odfingest has written its summary", None))
        return out
    try:
        summary = read_odf_summary(summary_path, obs_id=obsid)
    except DaxaXmmError as exc:
        return out + [(f"summary unreadable, nothing more planned: {exc}", None)]
    units = select_units(summary, instruments=tuple(config.instruments), process_unscheduled=config.process_unscheduled)
    for unit in units:
        if unit.inst in EPIC:
            groups = epic_unit_calls(layout, unit, config, sas_version, summary_path)
            out += [("", c) for group in groups for c in group]
        else:
            out += [("", c) for c in rgs_unit_calls(layout, unit, config, summary_path)]
    for inst in EPIC:
        its = [u for u in units if u.inst == inst]
        if not its:
            continue
        merges, bands = instrument_calls(layout, obsid, inst, its, config, sas_version)
        for plan in merges:
            if plan.single_source is not None:
                out.append((f"{inst}: one sub-exposure, copied not merged: {plan.single_source} -> {plan.dest}", None))
            out += [("", c) for c in plan.calls]
        out += [("", c) for pair in bands for c in pair]
    return out
