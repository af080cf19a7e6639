"""cleaned_evt_lists: evselect applies the event filter, espfilt's GTI and the CCD selection.

``evselect table=<events> filteredset=<out> withfilteredset=yes expression=<expr>
updateexposure=yes filterexposure=yes keepfilteroutput=yes`` (names as in the real
evselect ``Executing`` line). PN runs it a second time, with the same expression, on its
out-of-time list, in the same working folder.
"""

from __future__ import annotations

__all__ = ["STAGE", "CleanEventsConfig", "clean_events_calls"]

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import EPIC, Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.sas.emanom_log import emanom_supported, keep_ccds
from daxa_xmm.sas.filters import MOS_DEFAULT_PARTS, PN_DEFAULT_PARTS, compose_expression, gti_files, validate_expression
from daxa_xmm.steps._common import FrozenConfig, work_dir
from daxa_xmm.steps.quality import QualityConfig
from daxa_xmm.steps.spec import DaxaFunction, Section, Stage, StageInput, on_instruments
from daxa_xmm.units import Energy

State = Literal["G", "I", "U", "B", "O"]


class CleanEventsConfig(FrozenConfig):
    """cleaned_evt_lists: evselect of the chain event lists."""

    lo_en: Energy | None = Field(None, description="lower energy of the cleaned lists (e.g. '0.2 keV'); with hi_en")
    hi_en: Energy | None = Field(None, description="upper energy of the cleaned lists (e.g. '12 keV'); with lo_en")
    pn_filt_expr: tuple[str, ...] = Field(PN_DEFAULT_PARTS, description="PN selection expressions, joined with &&")
    mos_filt_expr: tuple[str, ...] = Field(MOS_DEFAULT_PARTS, description="MOS selection expressions, joined with &&")
    filt_mos_anom_state: bool = Field(False, description="drop MOS CCDs in an anomalous state (emanom)")
    acc_mos_anom_states: tuple[State, ...] = Field(
        ("G", "I", "U"), min_length=1,
        description="emanom states accepted when filtering MOS CCDs: G(ood), I(ntermediate), U(nknown), B(ad), O(ff)")

    @field_validator("pn_filt_expr", "mos_filt_expr", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("pn_filt_expr", "mos_filt_expr")
    @classmethod
    def _expr(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("give at least one expression")
        for part in v:
            validate_expression(part)
            for name in gti_files(part):
                # evselect opens a relative name from each call's own working folder
                # (docs/SAS_FIDELITY.md), not from where the user ran the command
                if not Path(name).is_absolute():
                    raise ValueError(f"gti({name},TIME): name the file by its absolute path; a relative "
                                     f"name would be opened from each call's working folder")
        return v

    @model_validator(mode="after")
    def _band(self) -> CleanEventsConfig:
        if (self.lo_en is None) != (self.hi_en is None):
            raise ValueError("lo_en and hi_en must be given together (both or neither)")
        if self.lo_ev is not None and self.hi_ev is not None and self.hi_ev <= self.lo_ev:
            raise ValueError(f"hi_en ({self.hi_ev:g} eV) must be larger than lo_en ({self.lo_ev:g} eV)")
        return self

    @property
    def lo_ev(self) -> float | None:
        return None if self.lo_en is None else float(self.lo_en.to_value("eV"))

    @property
    def hi_ev(self) -> float | None:
        return None if self.hi_en is None else float(self.hi_en.to_value("eV"))


def clean_events_calls(
    layout: ArchiveLayout,
    unit: Unit,
    cfg: CleanEventsConfig,
    accepted_ccds: Sequence[int] | None = None,
    timeout_s: float | None = None,
    *,
    quality: QualityConfig | None = None,
) -> list[SasCall]:
    """evselect call(s) cleaning one PN or MOS sub-exposure.

    Args:
        layout: the archive layout.
        unit: the PN/MOS unit.
        cfg: selection and energy range.
        accepted_ccds: MOS CCDs to keep (from emanom), or None to keep all.
        timeout_s: wall-clock limit per call.
        quality: the data-quality thresholds: the cleaned list must hold events and good
            time (PN's out-of-time list is not judged: it is only subtracted, and a short
            exposure may leave it empty).

    Returns:
        ``[events_call]`` for MOS, ``[events_call, oot_call]`` for PN.

    Raises:
        ConfigError, FilterExpressionError: for a bad unit or selection.
    """
    if unit.inst not in EPIC:
        raise ConfigError(f"cleaned_evt_lists cleans EPIC event lists, not {unit.inst} ({unit.label})")
    obsid, inst, exp = unit.obsid, unit.inst, unit.exp_id
    user = cfg.pn_filt_expr if inst == "PN" else cfg.mos_filt_expr
    cwd = work_dir(layout, obsid, unit.label, "cleaned_evt_lists")
    expr = compose_expression(
        inst,
        lo_ev=cfg.lo_ev,
        hi_ev=cfg.hi_ev,
        user_expr=user,
        # named from the call's working folder (SAS opens it from there): the products
        # folder's own path, which may hold spaces, never enters the expression
        gti_file=os.path.relpath(layout.espfilt_gti(obsid, inst, exp), cwd),
        accepted_ccds=accepted_ccds if inst != "PN" else None,
    )
    pairs: list[tuple[Path, Path, str]] = [(layout.chain_events(obsid, inst, exp), layout.clean_events(obsid, inst, exp), "cleaned_evt_lists")]
    if inst == "PN":
        pairs.append((layout.pn_events(obsid, exp, oot=True), layout.clean_events(obsid, inst, exp, oot=True), "cleaned_evt_lists_oot"))
    calls = []
    for i, (table, dest, step) in enumerate(pairs):
        calls.append(
            SasCall(
                step=step,
                obsid=obsid,
                unit=unit.label,
                argv=(
                    "evselect",
                    param("table", table),
                    param("filteredset", dest.name),
                    param("withfilteredset", True),
                    param("expression", expr),
                    param("updateexposure", True),
                    param("filterexposure", True),
                    param("keepfilteroutput", True),
                ),
                cwd=cwd,
                env={"SAS_CCF": str(layout.ccf(obsid))},
                outputs=(OutputSpec(dest.name, dest, check="events",
                                    quality=(quality or QualityConfig()).cleaned_events() if i == 0 else None),),
                timeout_s=timeout_s,
                clean_cwd=i == 0,
                extra={"exposure": exp, "expression": expr, "accepted_ccds": list(accepted_ccds) if accepted_ccds else None},
            )
        )
    return calls


def _build(si: StageInput) -> list[SasCall]:
    """evselect of the chain's lists; MOS keeps only the CCDs emanom accepted, when asked
    (read from emanom's log, so only once emanom has run: not while planning)."""
    unit, clean = si.the_unit, si.config.section(CleanEventsConfig)
    accepted = None
    if not si.planning and unit.inst != "PN" and clean.filt_mos_anom_state and emanom_supported(si.sas_version):
        accepted = keep_ccds(si.layout.emanom_log(unit.obsid, unit.inst, unit.exp_id), unit.ccds, clean.acc_mos_anom_states)
    return clean_events_calls(si.layout, unit, clean, accepted, si.timeout_s, quality=si.config.section(QualityConfig))


STAGE = Stage("cleaned_evt_lists", "unit", _build, on_instruments(*EPIC), typical_s=0.8,
              calls=("cleaned_evt_lists", "cleaned_evt_lists_oot"), sas_tasks=("evselect",),
              section=Section("clean", CleanEventsConfig, "event cleaning (evselect)"),
              daxa=(DaxaFunction("cleaned_evt_lists", needs=("espfilt",)),))
