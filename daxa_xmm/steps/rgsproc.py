"""rgsproc in three stages: events, angles, filter (DAXA's rgs_events, rgs_angles,
cleaned_rgs_event_lists).

All three run in one working folder: a later stage starts from the files the earlier one
left (``entrystage=2:angles`` reads stage 1's event list), so only stage 1 cleans the
folder. Stages 1 and 2 leave intermediates, checked but not moved; stage 3's event list is
the product.
"""

from __future__ import annotations

__all__ = ["RGS_STAGES", "rgsproc_calls"]

from pathlib import Path

from daxa_xmm.calls import OutputSpec, SasCall, param
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, rgs_events_name
from daxa_xmm.models import Unit
from daxa_xmm.steps._common import sas_env, work_dir

#: stage name -> (rgsproc stage id, seed/step name)
RGS_STAGES: dict[str, tuple[str, str]] = {
    "events": ("1:events", "rgs_events"),
    "angles": ("2:angles", "rgs_angles"),
    "filter": ("3:filter", "cleaned_rgs_event_lists"),
}


def rgsproc_calls(
    layout: ArchiveLayout,
    unit: Unit,
    summary: Path,
    stages: tuple[str, ...] = ("events", "angles", "filter"),
    timeout_s: float | None = None,
) -> list[SasCall]:
    """rgsproc calls for one RGS sub-exposure, one per stage asked for, in order.

    Args:
        stages: any of ``events``, ``angles``, ``filter``; each seed asks for its own.

    Raises:
        ConfigError: for a non-RGS unit or an unknown stage.
    """
    if unit.inst not in ("R1", "R2"):
        raise ConfigError(f"rgsproc processes R1/R2, not {unit.inst} ({unit.label})")
    unknown = [s for s in stages if s not in RGS_STAGES]
    if unknown:
        raise ConfigError(f"rgsproc stages {unknown} unknown; choose from {list(RGS_STAGES)}")
    obsid = unit.obsid
    cwd = work_dir(layout, obsid, unit.label, "rgsproc")
    evt = rgs_events_name(obsid, unit.inst, unit.exp_id)
    calls = []
    for stage in stages:
        stage_id, step = RGS_STAGES[stage]
        dest = layout.rgs_events(obsid, unit.inst, unit.exp_id) if stage == "filter" else None
        calls.append(
            SasCall(
                step=step,
                obsid=obsid,
                unit=unit.label,
                argv=(
                    "rgsproc",
                    param("entrystage", stage_id),
                    param("finalstage", stage_id),
                    param("withinstexpids", True, "true/false"),
                    param("instexpids", f"{unit.inst}{unit.exp_id}"),
                ),
                cwd=cwd,
                env=sas_env(layout, obsid, summary),
                # stage 3's list is the product, and stays for the stages of a resumed run
                outputs=(OutputSpec(evt, dest, copy=dest is not None),),
                timeout_s=timeout_s,
                clean_cwd=stage == "events",
                extra={"exposure": unit.exp_id, "stage": stage_id},
            )
        )
    return calls
