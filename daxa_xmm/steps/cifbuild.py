"""cifbuild: the observation's calibration index file (ccf.cif).

The observation date comes from the ODF's own summary (SUM.ASC, OBSERVATION record), so
cifbuild needs no network and no guess: ``withobservationdate=yes
observationdate=YYYY-MM-DD``. The analysis date is ``now`` for a fresh calibration set, or a
fixed date to reproduce an earlier one.
"""

from __future__ import annotations

__all__ = ["CifBuildConfig", "cifbuild_calls"]

import re
from datetime import date, datetime

from pydantic import Field, field_validator

from daxa_xmm.calls import OutputSpec, SasCall, param
from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.steps._common import FrozenConfig, work_dir

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


def cifbuild_calls(
    layout: ArchiveLayout,
    obsid: str,
    observation_date: date | datetime,
    cfg: CifBuildConfig = CifBuildConfig(),
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
            env={"SAS_ODF": str(layout.odf_dir(obsid))},
            outputs=(OutputSpec("ccf.cif", layout.ccf(obsid)),),
            timeout_s=timeout_s,
            extra={"analysis_date": cfg.analysis_date, "observation_date": observation_date.strftime("%Y-%m-%d")},
        )
    ]
