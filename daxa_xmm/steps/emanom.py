"""emanom: which MOS CCDs are in an anomalous state (SAS >= 19 only).

Its log (``mos1S001-anom.log``) is read by :func:`daxa_xmm.sas.emanom_log.parse_emanom_out`, and
cleaned_evt_lists keeps only the CCDs in an accepted state. Before SAS 19 emanom did not
exist: the builder returns no call and logs a warning, and cleaning then keeps every CCD.

emanom examines chips 2-7 only (chip 1 has no corner data), and with ``writekeys=yes``, its
default, it writes ANOMHRn/ANOMHEn/ANOMFLn keywords into the header of its input event
list: the call declares emchain's list as a file it modifies, so the manifest says so. The
log is ``mos1S001-anom.log`` in DAXA 0.3.7, ``M1S001-anom.log`` in the ESAS cookbook: either
is taken. Sources: docs/SAS_FIDELITY.md.
"""

from __future__ import annotations

__all__ = ["STAGE", "EMANOM_MIN_SAS", "emanom_calls", "emanom_log_alt_name", "emanom_log_name"]

import logging

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.sas.emanom_log import EMANOM_MIN_SAS, emanom_supported
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps._common import work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput

logger = logging.getLogger(__name__)


def emanom_log_name(unit: Unit) -> str:
    """``mos1S001-anom.log``: the name emanom writes in its cwd (DAXA 0.3.7)."""
    return f"{unit.file_inst}{unit.exp_id}-anom.log"


def emanom_log_alt_name(unit: Unit) -> str:
    """``M1S001-anom.log``: the name the ESAS cookbook gives emanom's log."""
    return f"{unit.inst}{unit.exp_id}-anom.log"


def emanom_calls(
    layout: ArchiveLayout, unit: Unit, sas_version: SasVersion, timeout_s: float | None = None
) -> list[SasCall]:
    """One emanom call on emchain's event list, or ``[]`` (with a warning) before SAS 19.

    Raises:
        ConfigError: for a unit that is not M1 or M2.
    """
    if unit.inst not in ("M1", "M2"):
        raise ConfigError(f"emanom checks MOS CCDs, not {unit.inst} ({unit.label})")
    if sas_version < EMANOM_MIN_SAS:
        logger.warning("emanom needs SAS >= 19.0.0 (found %s): %s is not checked for anomalous CCDs", sas_version, unit.label)
        return []
    obsid = unit.obsid
    events = layout.mos_events(obsid, unit.inst, unit.exp_id)
    return [
        SasCall(
            step="emanom",
            obsid=obsid,
            unit=unit.label,
            argv=(
                "emanom",
                param("eventfile", events),
                param("keepcorner", False),
            ),
            cwd=work_dir(layout, obsid, unit.label, "emanom"),
            env={"SAS_CCF": str(layout.ccf(obsid))},
            outputs=(
                OutputSpec(emanom_log_name(unit), layout.emanom_log(obsid, unit.inst, unit.exp_id),
                           alt_names=(emanom_log_alt_name(unit),)),
                OutputSpec(str(events), kind="modify"),  # writekeys=yes: keywords into its input
            ),
            timeout_s=timeout_s,
            extra={"exposure": unit.exp_id},
        )
    ]


def _build(si: StageInput) -> list[SasCall]:
    return emanom_calls(si.layout, si.the_unit, si.sas_version, si.timeout_s)


def _applies(si: StageInput) -> bool:
    return si.the_inst in ("M1", "M2") and emanom_supported(si.sas_version)


STAGE = Stage("emanom", "unit", _build, _applies, typical_s=0.3, sas_tasks=("emanom",),
              daxa=(DaxaFunction("emanom", needs=("emchain",)),))
