"""epchain: PN event lists, out-of-time first, then the normal run reusing its intermediates.

The out-of-time (OOT) run comes first with ``keepintermediate=raw``: it runs atthkgen
(``runatthkgen`` defaults to Y), so it writes the attitude file
``P{obsid}OBX000ATTTSR0000.FIT`` beside the OOT list ``...OOEVLI0000.FIT``, and keeps the
raw intermediates. The normal run then skips the stages whose products are already in the
working folder (``runatthkgen=N runepframes=N runbadpixfind=N runbadpix=N``) and writes
``...PIEVLI0000.FIT`` only: no attitude file. Both calls share one cwd; the attitude file
is copied out (not moved), since the normal run reads it there, and when that folder is
lost the OOT run is redone before the normal one (``reads_cwd_of``).

The ODF is the odfingest summary, given as ``SAS_ODF`` (the OAL accepts a summary file
there); no ``odf=``, whose page documents an ODF directory. ``ccds`` lists the imaging
CCDs in epchain's own syntax (``1,6-9,12`` or ``7,3,11``; we write the plain comma list).
SAS 21.0.x shipped without radmonfix, so every 21.0 release needs ``runradmonfix=N``.
Sources for each fact: docs/SAS_FIDELITY.md.
"""

from __future__ import annotations

__all__ = ["STAGE", "epchain_calls", "needs_radmonfix_off"]

from pathlib import Path

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, attitude_name, pn_events_name
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps._common import sas_env, work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput, on_instruments


def needs_radmonfix_off(sas_version: SasVersion) -> bool:
    """True for SAS 21.0.x, whose binary distribution lacks the radmonfix task."""
    return (sas_version.major, sas_version.minor) == (21, 0)


def epchain_calls(
    layout: ArchiveLayout,
    unit: Unit,
    summary: Path,
    sas_version: SasVersion,
    timeout_s: float | None = None,
) -> list[SasCall]:
    """The two epchain calls (OOT, then normal) for one PN sub-exposure.

    Args:
        layout: the archive layout.
        unit: a PN unit whose ``ccds`` are its imaging CCDs.
        summary: the odfingest summary file (SAS_ODF).
        sas_version: decides ``runradmonfix=N``.
        timeout_s: wall-clock limit per call.

    Returns:
        ``[oot_call, normal_call]``.

    Raises:
        ConfigError: for a non-PN unit or one without imaging CCDs.
    """
    if unit.inst != "PN":
        raise ConfigError(f"epchain processes PN, not {unit.inst} ({unit.label})")
    if not unit.ccds:
        raise ConfigError(f"{unit.label}: no imaging CCDs for epchain (timing/burst or diagnostic mode?)")
    obsid = unit.obsid
    cwd = work_dir(layout, obsid, unit.label, "epchain")
    common = [
        param("odfaccess", "odf"),
        param("exposure", unit.exp_number),
        param("schedule", unit.schedule),
        param("ccds", ",".join(str(c) for c in sorted(unit.ccds))),
    ]
    radmon = [param("runradmonfix", False, "Y/N")] if needs_radmonfix_off(sas_version) else []
    env = sas_env(layout, obsid, summary)
    extra = {"exposure": unit.exp_id, "ccds": list(unit.ccds), "mode": unit.mode, "filter": unit.filter}
    oot = SasCall(
        step="epchain_oot",
        obsid=obsid,
        unit=unit.label,
        argv=(
            "epchain",
            *common,
            param("withoutoftime", True, "Y/N"),
            param("keepintermediate", "raw"),
            param("runbackground", False, "Y/N"),
            *radmon,
        ),
        cwd=cwd,
        env=env,
        outputs=(
            OutputSpec(pn_events_name(obsid, unit.exp_id, oot=True), layout.pn_events(obsid, unit.exp_id, oot=True),
                       check="events"),
            # atthkgen's product: copied out, the normal run reads it here
            OutputSpec(attitude_name(obsid), layout.attitude(obsid), copy=True, check="attitude"),
        ),
        timeout_s=timeout_s,
        extra=extra,
    )
    normal = SasCall(
        step="epchain",
        obsid=obsid,
        unit=unit.label,
        argv=(
            "epchain",
            *common,
            param("runatthkgen", False, "Y/N"),
            param("runepframes", False, "Y/N"),
            param("runbadpixfind", False, "Y/N"),
            param("runbadpix", False, "Y/N"),
            *radmon,
        ),
        cwd=cwd,
        env=env,
        outputs=(OutputSpec(pn_events_name(obsid, unit.exp_id), layout.pn_events(obsid, unit.exp_id), check="events"),),
        timeout_s=timeout_s,
        clean_cwd=False,
        reads_cwd_of="epchain_oot",
        extra=extra,
    )
    return [oot, normal]


def _build(si: StageInput) -> list[SasCall]:
    return epchain_calls(si.layout, si.the_unit, si.summary, si.sas_version, si.timeout_s)


#: The out-of-time run, then the normal one.
STAGE = Stage("epchain", "unit", _build, on_instruments("PN"), typical_s=8.0, calls=("epchain_oot", "epchain"),
              sas_tasks=("epchain",), daxa=(DaxaFunction("epchain", needs=("odf_ingest",)),), intermediate=True)
