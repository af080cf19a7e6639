"""odfingest: the ODF summary file every later SAS task reads through SAS_ODF.

odfingest names its output ``{rev}_{obsid}_SCX00000SUM.SAS`` and writes it to ``outdir``;
the call writes into its own working folder and the runner moves the file to the products
folder, so a half-written summary never sits where later steps look.
"""

from __future__ import annotations

__all__ = ["STAGE", "odfingest_calls"]

from daxa_xmm.layout import ArchiveLayout, check_obsid, summary_name
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput


def odfingest_calls(
    layout: ArchiveLayout, obsid: str, revolution: str, timeout_s: float | None = None
) -> list[SasCall]:
    """One odfingest call for ``obsid``.

    Args:
        layout: the archive layout.
        obsid: the 10-digit ObsID.
        revolution: its 4-digit revolution (part of the output name).
        timeout_s: wall-clock limit in seconds.

    Returns:
        ``[SasCall]`` with SAS_CCF (the ccf.cif cifbuild made) and SAS_ODF (the ODF folder).
    """
    check_obsid(obsid)
    cwd = work_dir(layout, obsid, obsid, "odfingest")
    odf = str(layout.odf_input_dir(obsid))
    name = summary_name(obsid, revolution)
    return [
        SasCall(
            step="odf_ingest",
            obsid=obsid,
            unit=obsid,
            argv=("odfingest", param("odfdir", odf), param("outdir", cwd), param("withodfdir", True)),
            cwd=cwd,
            env={"SAS_CCF": str(layout.ccf(obsid)), "SAS_ODF": odf},
            outputs=(OutputSpec(name, layout.summary(obsid, revolution), check="summary"),),
            timeout_s=timeout_s,
            extra={"revolution": revolution},
        )
    ]


def _build(si: StageInput) -> list[SasCall]:
    return odfingest_calls(si.layout, si.obsid, si.record.revolution, si.timeout_s)


STAGE = Stage("odf_ingest", "observation", _build, typical_s=0.5, sas_tasks=("odfingest",),
              daxa=(DaxaFunction("odf_ingest", needs=("cif_build",)),))
