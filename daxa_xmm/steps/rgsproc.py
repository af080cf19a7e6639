"""rgsproc in three stages: events, angles, filter (DAXA's rgs_events, rgs_angles,
cleaned_rgs_event_lists).

What each stage writes (docs/SAS_FIDELITY.md has the sources): ``1:events`` writes the
merged event list ``P{obsid}R1S004merged0000.FIT``; ``2:angles`` (rgsangles) adds the
angles to that list in place and writes no new file; ``3:filter`` writes the filtered list
``P{obsid}R1S004EVENLI0000.FIT``, the product. All three run in one working folder, each
later stage reading what the earlier one left there: only stage 1 cleans the folder, and
a later stage whose folder was lost makes the chain redo stage 1 first.
"""

from __future__ import annotations

__all__ = ["STAGE", "RGS_STAGES", "rgsproc_calls"]

from pathlib import Path

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, rgs_events_name, rgs_merged_name
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import sas_env, work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput, on_instruments

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
    merged = rgs_merged_name(obsid, unit.inst, unit.exp_id)
    # the upper-case spelling is accepted too: the sources spell the merged list one way
    alt = (merged.replace("merged", "MERGED"),)
    outputs = {
        "events": OutputSpec(merged, alt_names=alt),
        "angles": OutputSpec(merged, kind="modify", alt_names=alt),
        "filter": OutputSpec(rgs_events_name(obsid, unit.inst, unit.exp_id),
                             layout.rgs_events(obsid, unit.inst, unit.exp_id), check="events"),
    }
    previous = {"events": None, "angles": "rgs_events", "filter": "rgs_angles"}
    calls = []
    for stage in stages:
        stage_id, step = RGS_STAGES[stage]
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
                outputs=(outputs[stage],),
                timeout_s=timeout_s,
                clean_cwd=stage == "events",
                reads_cwd_of=previous[stage],
                extra={"exposure": unit.exp_id, "stage": stage_id},
            )
        )
    return calls


def _build(si: StageInput) -> list[SasCall]:
    return rgsproc_calls(si.layout, si.the_unit, si.summary, timeout_s=si.timeout_s)


#: One step of three calls, each DAXA's function of its own name.
STAGE = Stage(
    "rgsproc", "unit", _build, on_instruments("R1", "R2"), typical_s=3.0,
    calls=tuple(step for _, step in RGS_STAGES.values()), sas_tasks=("rgsproc",),
    daxa=(DaxaFunction("rgs_events", needs=("odf_ingest",), calls=("rgs_events",)),
          DaxaFunction("rgs_angles", needs=("rgs_events",), calls=("rgs_angles",)),
          DaxaFunction("cleaned_rgs_event_lists", needs=("rgs_angles",), calls=("cleaned_rgs_event_lists",))),
)
