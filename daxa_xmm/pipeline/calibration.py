"""Has an observation's calibration set changed since it was processed? If so, mark it stale.

Scheduled reprocessing must refresh the calibration of processed observations without
reprocessing all of them every night. A cifbuild call whose argv carries today's date would
change its fingerprint every day, and through the upstream tokens of
``daxa_xmm.pipeline.identity`` every step downstream would re-run, whether or not a calibration file
changed. So the check runs apart from the pipeline:

1. cifbuild with ``analysisdate=<today>`` into a scratch folder (``work/calcheck``), never
   over the observation's ``ccf.cif``;
2. compare the new CALINDEX table with the one in ``ccf.cif``, by (scope, type, issue) rows;
3. only when they differ, the observation's ``cif_build`` record is set aside
   (status ``skipped`` with the reason, so it is no longer up to date). The next run re-runs
   cifbuild, its new end time changes its upstream token, and every step downstream re-runs
   through the existing manifest mechanism, untouched elsewhere.

An unchanged observation keeps every record, so the run that follows skips it entirely.
In the core: the deployment flow (deployments/flow.py) wraps :func:`check_calibration` in a task.
"""

from __future__ import annotations

__all__ = ["CalibrationChange", "calindex", "check_calibration", "mark_stale"]

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.summary import read_observation_record
from daxa_xmm.pipeline.locks import observation_lock
from daxa_xmm.pipeline.manifest import record_key
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.sas.calindex import listed_ccfs
from daxa_xmm.sas.calls import OutputSpec
from daxa_xmm.sas.runner import raise_for_result, run_sas
from daxa_xmm.sas.slots import FileSlots
from daxa_xmm.steps.cifbuild import CifBuildConfig, cifbuild_calls

log = logging.getLogger(__name__)

#: The manifest step name of cifbuild (``daxa_xmm.steps.cifbuild``).
CIF_STEP = "cif_build"


@dataclass(frozen=True)
class CalibrationChange:
    """How the calibration set of one observation changed.

    Attributes:
        obsid: the observation.
        analysis_date: the analysis date the new set was built for (YYYY-MM-DD, UTC).
        added: ``SCOPE_TYPE_ISSUE`` entries of the new set that the old one lacks.
        removed: entries of the old set that the new one no longer has.
    """

    obsid: str
    analysis_date: str
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def describe(self) -> str:
        """One line for a report: ``+EPN_QUANTUMEF_0020 -EPN_QUANTUMEF_0019``."""
        return " ".join([f"+{a}" for a in self.added] + [f"-{r}" for r in self.removed])


def calindex(path: Path) -> frozenset[str]:
    """The calibration set a ``ccf.cif`` names: ``{"EPN_QUANTUMEF_0019", ...}``.

    Only scope, type and issue identify a constituent; file paths (``fullpath=yes``) and
    creation dates differ between two cifbuild runs that chose the very same files.
    The CALINDEX table is read by :func:`daxa_xmm.sas.calindex.listed_ccfs`.

    Raises:
        OSError: the file cannot be read, or is not a FITS calibration index.
    """
    return frozenset(f"{scope}_{typeid}_{issue:04d}" for scope, typeid, issue, _ in listed_ccfs(path))


def today_utc() -> str:
    """Today's date in UTC, the analysis date of a scheduled check."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def check_calibration(
    layout: ArchiveLayout,
    obsid: str,
    *,
    extra_env: dict[str, str] | None = None,
    slots: FileSlots | None = None,
    timeout_s: float | None = None,
    analysis_date: str | None = None,
) -> CalibrationChange | None:
    """Build today's calibration index for ``obsid`` aside and compare it with the current one.

    Args:
        layout: the archive layout.
        obsid: the observation; it must have an ``ok`` cif_build record and its ccf.cif
            (otherwise the next run runs cifbuild anyway and nothing needs checking).
        extra_env: variables the SAS call gets (as the pipeline's calls do).
        slots: the machine's SAS process cap, shared with the pipeline.
        timeout_s: limit of the cifbuild call.
        analysis_date: YYYY-MM-DD; default today (UTC).

    Returns:
        The change, or None when the set is unchanged or the observation was never
        calibrated.

    Raises:
        SasTaskError: the check's cifbuild failed (the observation is left as it was).
    """
    ccf = layout.ccf(obsid)
    rec = ManifestStore(layout.manifest(obsid), obsid).get(obsid, CIF_STEP)
    if rec is None or rec.status != "ok" or not ccf.exists():
        return None
    date = analysis_date or today_utc()
    record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
    call = cifbuild_calls(layout, obsid, record.start, CifBuildConfig(analysis_date=date), timeout_s)[0]
    scratch = layout.work_dir(obsid, "calcheck")
    call = dataclasses.replace(call, step="cif_check", cwd=scratch, outputs=(OutputSpec("ccf.cif", None),))
    result = run_sas(call, log_dir=layout.logs_dir(obsid), extra_env=extra_env, slot=slots)
    raise_for_result(result)
    old, new = calindex(ccf), calindex(scratch / "ccf.cif")
    if old == new:
        return None
    return CalibrationChange(obsid, date, tuple(sorted(new - old)), tuple(sorted(old - new)))


def mark_stale(layout: ArchiveLayout, change: CalibrationChange) -> bool:
    """Set aside the cif_build record of a changed observation so that the next run redoes it.

    Done under the observation's lock: a run processing the observation right now is left
    alone (False is returned, and the next scheduled check finds the change again).
    The old record keeps its argv and fingerprint; only its status and message change.
    """
    store = ManifestStore(layout.manifest(change.obsid), change.obsid)
    try:
        with observation_lock(layout.obs_dir(change.obsid)):

            def stale(manifest):
                key = record_key(change.obsid, CIF_STEP)
                rec = manifest.records.get(key)
                if rec is None:
                    return
                manifest.put(rec.model_copy(update={
                    "status": "skipped",
                    "message": f"calibration set changed for analysis date {change.analysis_date} "
                    f"({change.describe()}): cifbuild and everything downstream re-run",
                }))

            store.update(stale)
            return True
    except Exception as exc:  # ObservationBusy, or a manifest we cannot write
        log.warning("%s: calibration changed but not marked (%s)", change.obsid, exc)
        return False
