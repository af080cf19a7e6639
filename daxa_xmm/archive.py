"""Archive: what DAXA users pass to every seed function, backed by an ArchiveLayout.

It knows the observations to process, the SAS version to build calls for, and reads (and
caches) each observation's odfingest summary. Reading is per observation and its errors
are the caller's to catch per observation: a seed function records them under
``extra_info[obsid]["error"]`` and goes on with the others.
"""

from __future__ import annotations

__all__ = ["Archive"]

from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from daxa_xmm.errors import LayoutError, SummaryParseError
from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.models import OdfSummary, Unit
from daxa_xmm.sasversion import SasVersion, parse_sas_version


class Archive:
    """The observations of one archive and how to read them.

    Args:
        layout: raw and output roots.
        sas_version: the SAS release calls are built for (a SasVersion or ``"22.1.0"``).
        obsids: ObsIDs to process; default every 10-digit folder of the raw archive.
        summary_paths: ObsID -> summary file to use instead of the one odfingest made (the
            plan CLI shows what would run for a summary file alone).
    """

    def __init__(
        self,
        layout: ArchiveLayout,
        sas_version: SasVersion | str,
        obsids: Iterable[str] | None = None,
        summary_paths: Mapping[str, Path] | None = None,
    ) -> None:
        self.layout = layout
        self.sas_version = sas_version if isinstance(sas_version, SasVersion) else parse_sas_version(sas_version)
        self.obsids: list[str] = [check_obsid(o) for o in (layout.obsids() if obsids is None else obsids)]
        self._summary_paths = {check_obsid(k): Path(v) for k, v in (summary_paths or {}).items()}
        self._summaries: dict[str, OdfSummary] = {}

    def __repr__(self) -> str:
        return f"Archive({len(self.obsids)} ObsIDs, SAS {self.sas_version}, out={self.layout.out_root})"

    def summary_path(self, obsid: str) -> Path:
        """The odfingest summary of ``obsid``.

        Raises:
            LayoutError: when odf_ingest has not made one.
        """
        if obsid in self._summary_paths:
            return self._summary_paths[obsid]
        found = self.layout.find_summary(obsid)
        if found is None:
            raise LayoutError(f"ObsID {obsid}: no odfingest summary in {self.layout.obs_dir(obsid)} (run odf_ingest first)")
        return found

    def summary(self, obsid: str) -> OdfSummary:
        """The parsed odfingest summary, read once and cached.

        Raises:
            LayoutError: when there is none; SummaryParseError: when it is unreadable.
        """
        if obsid not in self._summaries:
            from daxa_xmm.summary import read_odf_summary

            self._summaries[obsid] = read_odf_summary(self.summary_path(obsid), obs_id=obsid)
        return self._summaries[obsid]

    def units(
        self,
        obsid: str,
        instruments: tuple[str, ...] = ("PN", "M1", "M2", "R1", "R2"),
        process_unscheduled: bool = True,
    ) -> list[Unit]:
        """The processing units of ``obsid`` for ``instruments`` (see daxa_xmm.selection)."""
        from daxa_xmm.selection import select_units

        return select_units(self.summary(obsid), instruments=instruments, process_unscheduled=process_unscheduled)

    def revolution(self, obsid: str) -> str:
        """The revolution, from the ODF file names, else from a known summary."""
        try:
            return self.layout.revolution(obsid)
        except LayoutError:
            if obsid in self._summary_paths:
                return self.summary(obsid).observation.revolution
            raise

    def observation_date(self, obsid: str) -> datetime:
        """The observation start, from the ODF's SUM.ASC OBSERVATION record.

        Falls back on the odfingest summary given for ``obsid`` (which copies that record)
        when the ODF is not at hand.

        Raises:
            LayoutError, SummaryParseError: when neither can be read.
        """
        from daxa_xmm.summary import read_observation_record

        try:
            asc = self.layout.odf_sum_asc(obsid)
        except LayoutError:
            if obsid in self._summary_paths:
                return self.summary(obsid).observation.start
            raise
        try:
            return read_observation_record(asc, obs_id=obsid).start
        except OSError as exc:
            raise SummaryParseError(asc, f"cannot read: {exc}") from None
