"""emchain: one MOS event list per sub-exposure.

One call per sub-exposure (``instruments=M1 exposures=S001``) so that each is a unit of
its own, as epchain's are. No ``ccds``: it breaks FastUncompressed mode (timing on CCD 1,
imaging elsewhere), whose submode then reads Unknown. ``addtaglenoise=no
makeflaregti=no``: emanom and espfilt do those jobs, visibly, as their own steps. The ODF
is the odfingest summary, given as ``SAS_ODF`` (emchain's ``odf`` defaults to it). emchain
runs atthkgen, which writes the attitude file (emchain's output-files page), so a MOS-only
observation has one for its exposure maps. Sources: docs/SAS_FIDELITY.md.
"""

from __future__ import annotations

__all__ = ["STAGE", "emchain_calls"]

from pathlib import Path

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, attitude_name, mos_events_name
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import sas_env, work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput, on_instruments


def emchain_calls(
    layout: ArchiveLayout, unit: Unit, summary: Path, timeout_s: float | None = None
) -> list[SasCall]:
    """One emchain call for a MOS sub-exposure.

    Raises:
        ConfigError: for a unit that is not M1 or M2.
    """
    if unit.inst not in ("M1", "M2"):
        raise ConfigError(f"emchain processes M1/M2, not {unit.inst} ({unit.label})")
    obsid = unit.obsid
    return [
        SasCall(
            step="emchain",
            obsid=obsid,
            unit=unit.label,
            argv=(
                "emchain",
                param("instruments", unit.inst),
                param("exposures", unit.exp_id),
                param("addtaglenoise", False),
                param("makeflaregti", False),
            ),
            cwd=work_dir(layout, obsid, unit.label, "emchain"),
            env=sas_env(layout, obsid, summary),
            outputs=(
                OutputSpec(
                    mos_events_name(obsid, unit.inst, unit.exp_id), layout.mos_events(obsid, unit.inst, unit.exp_id),
                    check="events",
                ),
                # emchain runs atthkgen too: a MOS-only observation still gets its attitude
                OutputSpec(attitude_name(obsid), layout.attitude(obsid), check="attitude"),
            ),
            timeout_s=timeout_s,
            extra={"exposure": unit.exp_id, "mode": unit.mode, "filter": unit.filter},
        )
    ]


def _build(si: StageInput) -> list[SasCall]:
    return emchain_calls(si.layout, si.the_unit, si.summary, si.timeout_s)


STAGE = Stage("emchain", "unit", _build, on_instruments("M1", "M2"), typical_s=3.0, sas_tasks=("emchain",),
              daxa=(DaxaFunction("emchain", needs=("odf_ingest",)),), intermediate=True)
