"""cifbuild: the observation's calibration index file (ccf.cif).

The observation date comes from the ODF's own summary (SUM.ASC, OBSERVATION record), so
cifbuild needs no network and no guess: ``withobservationdate=yes
observationdate=YYYY-MM-DD``. The analysis date is ``now`` for a fresh calibration set, or a
fixed date to reproduce an earlier one. With ``now`` the manifest records the date actually
used: the ``ANALDATE`` cifbuild writes into the CALINDEX header (cifbuild's documentation:
"The analysis and observation dates used in the creation of the CIF are recorded in the two
block attributes OBSVDATE and ANALDATE"), else the day the call ran. The argv keeps
``now``, so that a re-run on another day is not a new call by itself: whether the
calibration changed is judged from the files (daxa_xmm.sas.calindex).
"""

from __future__ import annotations

__all__ = ["STAGE", "CifBuildConfig", "analysis_date_used", "cifbuild_calls"]

import re
from datetime import date, datetime, timezone
from pathlib import Path

from pydantic import Field, field_validator

from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import FrozenConfig, work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?)?$")


class CifBuildConfig(FrozenConfig):
    """Knobs of cif_build."""

    analysis_date: str = Field(
        "now",
        description="cifbuild analysisdate: 'now' (latest calibration) or YYYY-MM-DD[Thh:mm:ss] to reproduce an older set",
    )

    @field_validator("analysis_date", mode="before")
    @classmethod
    def _check_date(cls, v: object) -> str:
        if isinstance(v, datetime):
            return v.strftime("%Y-%m-%dT%H:%M:%S")
        if isinstance(v, date):
            return v.isoformat()
        if not isinstance(v, str) or not (v == "now" or _DATE.match(v)):
            raise ValueError(f"{v!r} is neither 'now' nor a date YYYY-MM-DD[Thh:mm:ss]")
        if v != "now":
            datetime.fromisoformat(v)  # refuses 2020-13-45
        return v


_DEFAULT = CifBuildConfig()


def cifbuild_calls(
    layout: ArchiveLayout,
    obsid: str,
    observation_date: date | datetime,
    cfg: CifBuildConfig = _DEFAULT,
    timeout_s: float | None = None,
) -> list[SasCall]:
    """One cifbuild call making ``ccf.cif`` for ``obsid``.

    Args:
        layout: the archive layout (paths only).
        obsid: the 10-digit ObsID.
        observation_date: the observation start (from SUM.ASC); only the date is used.
        cfg: the analysis date.
        timeout_s: wall-clock limit in seconds.

    Returns:
        ``[SasCall]`` with ``SAS_ODF`` set to the ODF folder and no ``SAS_CCF`` (there is
        none yet).
    """
    check_obsid(obsid)
    argv = (
        "cifbuild",
        param("calindexset", "ccf.cif"),
        param("withobservationdate", True),
        param("observationdate", observation_date.strftime("%Y-%m-%d")),
        param("analysisdate", cfg.analysis_date),
        param("fullpath", True),
    )
    return [
        SasCall(
            step="cif_build",
            obsid=obsid,
            unit=obsid,
            argv=argv,
            cwd=work_dir(layout, obsid, obsid, "cifbuild"),
            env={"SAS_ODF": str(layout.odf_input_dir(obsid))},
            outputs=(OutputSpec("ccf.cif", layout.ccf(obsid), check="calindex"),),
            timeout_s=timeout_s,
            extra={"analysis_date": cfg.analysis_date, "observation_date": observation_date.strftime("%Y-%m-%d")},
        )
    ]


def analysis_date_used(cif: Path, requested: str, ran_at: float) -> str:
    """The analysis date a finished cifbuild used: ``requested`` unless it was ``now``.

    For ``now`` it is the ``ANALDATE`` of the index's CALINDEX header when readable, else
    the UTC date of ``ran_at`` (the call's start, UNIX time).
    """
    if requested != "now":
        return requested
    from daxa_xmm.odf.fitsread import find, read_hdus  # not astropy: its import held the chain up 0.5 s

    try:
        value = find(read_hdus(cif), "CALINDEX").cards.get("ANALDATE")
    except (OSError, KeyError, ValueError):
        value = None
    if isinstance(value, str) and _DATE.match(value.strip()):
        return value.strip()
    return datetime.fromtimestamp(ran_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _build(si: StageInput) -> list[SasCall]:
    return cifbuild_calls(si.layout, si.obsid, si.record.start, si.config.section(CifBuildConfig), si.timeout_s)


STAGE = Stage("cif_build", "observation", _build, typical_s=0.5, sas_tasks=("cifbuild",),
              daxa=(DaxaFunction("cif_build"),))
