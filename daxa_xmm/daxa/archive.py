"""Archive: what DAXA users pass to every step function, backed by an ArchiveLayout.

It knows the observations and instruments to process, the SAS version to build calls for,
and reads (and caches) each observation's odfingest summary. Reading is per observation and
its errors are the caller's to catch per observation: a step function records them and goes
on with the others. Its DAXA records (``process_success``...) are read from the products
folder whenever asked (daxa_xmm.daxa.records), so they outlive the Python session.
"""

from __future__ import annotations

__all__ = ["Archive"]

from collections.abc import Iterable, Mapping
from pathlib import Path

from daxa_xmm.daxa.records import DaxaRecords, read_records
from daxa_xmm.errors import ConfigError, LayoutError, SummaryParseError
from daxa_xmm.layout import ArchiveLayout, check_obsid, select_obsids
from daxa_xmm.odf.models import ObservationRecord, OdfSummary, Unit
from daxa_xmm.odf.selection import UNIT_INSTRUMENTS
from daxa_xmm.pipeline.manifest import Manifest, load_manifest
from daxa_xmm.sas.version import SasVersion, parse_sas_version


class Archive:
    """The observations of one archive and how to read them.

    Args:
        layout: raw and output roots.
        sas_version: the SAS release calls are built for (a SasVersion or ``"22.1.0"``).
        obsids: ObsIDs to process; default every 10-digit folder of the raw archive.
        summary_paths: ObsID -> summary file to use instead of the one odfingest made (the
            plan CLI shows what would run for a summary file alone).
        instruments: the instruments to process (DAXA's ``insts``); default all five.
    """

    def __init__(
        self,
        layout: ArchiveLayout,
        sas_version: SasVersion | str,
        obsids: Iterable[str] | None = None,
        summary_paths: Mapping[str, Path] | None = None,
        instruments: Iterable[str] | None = None,
    ) -> None:
        self.layout = layout
        self.sas_version = sas_version if isinstance(sas_version, SasVersion) else parse_sas_version(sas_version)
        self.obsids: list[str] = [check_obsid(o) for o in (layout.obsids() if obsids is None else obsids)]
        self._summary_paths = {check_obsid(k): Path(v) for k, v in (summary_paths or {}).items()}
        self._summaries: dict[str, OdfSummary] = {}
        self.instruments: tuple[str, ...] = _instruments(instruments)

    @classmethod
    def from_folders(
        cls,
        odf_folder: str | Path,
        out_folder: str | Path,
        obsids: Iterable[str] | None = None,
        instruments: Iterable[str] | None = None,
        sas_version: SasVersion | str | None = None,
    ) -> Archive:
        """An archive of the ODFs under ``odf_folder`` (one folder per ObsID), products under ``out_folder``.

        Args:
            odf_folder: the raw archive.
            out_folder: the products folder; records of earlier sessions are read from it.
            obsids: only these ObsIDs (each must have a folder); default all.
            instruments: only these of PN, M1, M2, R1, R2; default all.
            sas_version: the SAS to build calls for; default the SAS set up in this shell.

        Raises:
            ConfigError, LayoutError, SasNotFoundError: naming the folder, ObsID,
                instrument or SAS variable at fault.
        """
        layout = ArchiveLayout(Path(odf_folder), Path(out_folder))
        if not layout.raw_root.is_dir():
            raise LayoutError(f"ODF folder {layout.raw_root} does not exist")
        chosen = select_obsids(layout, None if obsids is None else [str(o) for o in obsids])
        if sas_version is None:
            from daxa_xmm.sas.environment import detect_sas

            sas_version = detect_sas().version
        return cls(layout, sas_version, chosen, instruments=instruments)

    def __repr__(self) -> str:
        return f"Archive({len(self.obsids)} ObsIDs, SAS {self.sas_version}, out={self.layout.out_root})"

    # --- DAXA's records, read from the products folder -----------------------------------
    def records(self, logs: bool = False) -> DaxaRecords:
        """Every record at once (the properties below each read them afresh); ``logs``
        reads every call's stdout log too."""
        return read_records(self.layout, self.obsids, logs=logs)

    @property
    def process_success(self) -> dict:
        """``[mission][step][key]``: True when every SAS call of that key succeeded."""
        return self.records().success

    @property
    def process_errors(self) -> dict:
        """``[mission][step][key]``: the parsed SAS errors (or why it failed) of failed keys."""
        return self.records().errors

    @property
    def process_warnings(self) -> dict:
        """``[mission][step][key]``: the parsed SAS warnings."""
        return self.records().warnings

    @property
    def process_logs(self) -> dict:
        """``[mission][step][key]``: what SAS wrote to stdout."""
        return self.records(logs=True).logs

    @property
    def process_extra_info(self) -> dict:
        """``[mission][step][key]``: what each step knows about its products (paths...)."""
        return self.records().extra_info

    @property
    def final_process_success(self) -> dict:
        """``[mission][obsid]``: True when at least one instrument's merged list was made
        (set once merge_subexposures has run on the observation)."""
        return self.records().final

    def manifest(self, obsid: str) -> Manifest:
        """The observation's manifest as it is on disk now (empty if nothing ran)."""
        return load_manifest(self.layout.manifest(obsid), obsid)

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
            from daxa_xmm.odf.summary import read_odf_summary

            self._summaries[obsid] = read_odf_summary(self.summary_path(obsid), obs_id=obsid)
        return self._summaries[obsid]

    def units(
        self,
        obsid: str,
        instruments: tuple[str, ...] = UNIT_INSTRUMENTS,
        process_unscheduled: bool = True,
    ) -> list[Unit]:
        """The processing units of ``obsid`` for ``instruments`` that this archive processes."""
        from daxa_xmm.odf.selection import select_units

        insts = tuple(i for i in instruments if i in self.instruments)
        return select_units(self.summary(obsid), instruments=insts, process_unscheduled=process_unscheduled)

    def observation_record(self, obsid: str) -> ObservationRecord:
        """The OBSERVATION record (revolution, start), from the ODF's SUM.ASC as the archive
        flow reads it, so that a plan's cifbuild and odfingest are the flow's calls.

        Falls back on the odfingest summary given for ``obsid`` (which copies that record)
        when the ODF is not at hand.

        Raises:
            LayoutError, SummaryParseError: when neither can be read.
        """
        from daxa_xmm.odf.summary import read_observation_record

        try:
            asc = self.layout.odf_sum_asc(obsid)
        except LayoutError:
            if obsid in self._summary_paths:
                return self.summary(obsid).observation
            raise
        try:
            return read_observation_record(asc, obs_id=obsid)
        except OSError as exc:
            raise SummaryParseError(asc, f"cannot read: {exc}") from None


def _instruments(instruments: Iterable[str] | None) -> tuple[str, ...]:
    if instruments is None:
        return UNIT_INSTRUMENTS
    chosen = tuple(str(i).upper() for i in ([instruments] if isinstance(instruments, str) else instruments))
    bad = [i for i in chosen if i not in UNIT_INSTRUMENTS]
    if bad or not chosen:
        raise ConfigError(f"instruments={list(chosen)!r}: choose from {', '.join(UNIT_INSTRUMENTS)}")
    return chosen
