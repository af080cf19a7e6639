"""Archive: what DAXA users pass to every step function, backed by an ArchiveLayout.

It knows the observations and instruments to process, the SAS version to build calls for,
and reads (and caches) each observation's odfingest summary. Reading is per observation and
its errors are the caller's to catch per observation: a step function records them and goes
on with the others. Its DAXA records (``process_success``...) are read from the products
folder whenever asked (daxa_xmm.daxa.records), so they outlive the Python session.

Three ways to make one: ``Archive(layout, sas_version)``; ``Archive.from_folders(odfs, out)``;
and DAXA's ``Archive("name", XMMPointed(odf_folder=odfs))`` (:mod:`daxa_xmm.daxa.archive_build`:
DAXA's folders under ``daxa_output/archives/<name>/``, the SAS version found when first
needed). DAXA's look-ups in the records are in :mod:`daxa_xmm.daxa.archive_logs`.
"""

from __future__ import annotations

__all__ = ["Archive"]

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daxa_xmm.daxa import archive_logs
from daxa_xmm.daxa.records import MISSION, DaxaRecords, read_records
from daxa_xmm.errors import ConfigError, LayoutError, SummaryParseError
from daxa_xmm.layout import ArchiveLayout, check_obsid, select_obsids
from daxa_xmm.odf.models import ObservationRecord, OdfSummary, Unit
from daxa_xmm.odf.selection import UNIT_INSTRUMENTS
from daxa_xmm.pipeline.manifest import Manifest, load_manifest
from daxa_xmm.sas.version import SasVersion, parse_sas_version

if TYPE_CHECKING:  # pragma: no cover
    from daxa_xmm.daxa.mission import XMMPointed


class Archive(archive_logs.DaxaLookups):
    """The observations of one archive and how to read them.

    Args:
        layout: raw and output roots; or, as DAXA, the archive's name (``archive_name``).
        sas_version: the SAS release calls are built for (a SasVersion or ``"22.1.0"``); or,
            as DAXA, the ``missions``: an XMMPointed (or a list holding one).
        obsids: ObsIDs to process; default every 10-digit folder of the raw archive.
        summary_paths: ObsID -> summary file to use instead of the one odfingest made (the
            plan CLI shows what would run for a summary file alone).
        instruments: the instruments to process (DAXA's ``insts``); default all five.
        archive_name, missions, clobber, download_products, use_preprocessed: DAXA's
            arguments, by keyword (see :mod:`daxa_xmm.daxa.archive_build`).
        output: DAXA's ``daxa_save_path`` (default ``daxa_output``), where archives live.

    Raises:
        ConfigError: missions that are not one XMMPointed, ``use_preprocessed``.
    """

    def __init__(
        self,
        layout: ArchiveLayout | str | None = None,
        sas_version: SasVersion | str | XMMPointed | Sequence[XMMPointed] | None = None,
        obsids: Iterable[str] | None = None,
        summary_paths: Mapping[str, Path] | None = None,
        instruments: Iterable[str] | None = None,
        *,
        archive_name: str | None = None,
        missions: XMMPointed | Sequence[XMMPointed] | None = None,
        clobber: bool = False,
        download_products: bool | dict = True,
        use_preprocessed: bool | dict = False,
        output: str | Path | None = None,
    ) -> None:
        self._mission: XMMPointed | None = None
        self._name: str | None = None
        self._path: Path | None = None
        self._sas_version: SasVersion | None = None
        if not isinstance(layout, ArchiveLayout):  # DAXA's Archive(archive_name, missions, ...)
            from daxa_xmm.daxa.archive_build import build_from_missions

            name = archive_name if layout is None else layout
            built = build_from_missions(str(name), missions if missions is not None else sas_version, clobber,
                                        download_products, use_preprocessed, output)
            layout, self._mission, self._name, self._path = built.layout, built.mission, built.name, built.path
            obsids = [str(o) for o in built.mission.filtered_obs_ids]
            instruments = [i for i in built.mission.chosen_instruments if i in UNIT_INSTRUMENTS]
            if not instruments:
                raise ConfigError(f"chosen instruments {built.mission.chosen_instruments}: daxa-xmm processes "
                                  f"{', '.join(UNIT_INSTRUMENTS)}")
        elif isinstance(sas_version, (SasVersion, str)):
            self._sas_version = sas_version if isinstance(sas_version, SasVersion) else parse_sas_version(sas_version)
        elif sas_version is not None:
            raise ConfigError("Archive(layout, sas_version): sas_version is a SAS release such as '22.1.0'")
        self.layout = layout
        self.obsids: list[str] = [check_obsid(o) for o in (layout.obsids() if obsids is None else obsids)]
        self._summary_paths = {check_obsid(k): Path(v) for k, v in (summary_paths or {}).items()}
        self._summaries: dict[str, OdfSummary] = {}
        self.instruments: tuple[str, ...] = _instruments(instruments)

    @property
    def sas_version(self) -> SasVersion:
        """The SAS release calls are built for; an archive built as DAXA builds it takes the
        SAS set up in this shell, found when first needed (as DAXA, which needs SAS only to process)."""
        if self._sas_version is None:
            from daxa_xmm.sas.environment import detect_sas

            self._sas_version = detect_sas().version
        return self._sas_version

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
        sas = self._sas_version if self._sas_version is not None else "from the shell"
        return f"Archive({len(self.obsids)} ObsIDs, SAS {sas}, out={self.layout.out_root})"

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
    def process_configurations(self) -> dict:
        """``[mission]``: a list of ``{step: {argument: value}}``, one per DAXA step function
        that ran, in DAXA's step order, with every argument (defaults too) of its latest call:
        what made the products now on disk (DAXA keeps the first call's). Quantities are kept
        as their text (``"2500.0 eV"``): the records are read from disk. Runs of the command
        line and ``full_process_xmm`` keep their settings in the report and the manifests."""
        return self.records().configurations

    @property
    def process_extra_info(self) -> dict:
        """``[mission][step][key]``: what each step knows about its products (paths...)."""
        return self.records().extra_info

    @property
    def final_process_success(self) -> dict:
        """``[mission][obsid]``: True when at least one instrument's merged list was made
        (set once merge_subexposures has run on the observation)."""
        return self.records().final

    # --- DAXA's archive, missions and folders --------------------------------------------
    @property
    def archive_name(self) -> str:
        """The name given to ``Archive(name, missions)``; else the products folder's name."""
        return self._name if self._name is not None else self.layout.out_root.name

    @property
    def archive_path(self) -> str:
        """DAXA's archive folder, with its trailing slash (``<output>/archives/<name>/``; for
        an archive made from folders, the products folder)."""
        return f"{self._path if self._path is not None else self.layout.out_root}/"

    @property
    def missions(self) -> list[XMMPointed]:
        """The archive's one mission, an XMMPointed of its ODF folder, ObsIDs and
        instruments (made when first asked for an archive made from folders)."""
        if self._mission is None:
            from daxa_xmm.daxa.mission import XMMPointed

            mission = XMMPointed(insts=list(self.instruments), odf_folder=self.layout.raw_root)
            if set(mission.filtered_obs_ids) != set(self.obsids):
                mission.filter_on_obs_ids(self.obsids)
            mission.locked = True
            self._mission = mission
        return [self._mission]

    def __getitem__(self, key: int | str) -> XMMPointed:
        """The mission, by name (``arch["xmm_pointed"]``) or index, as DAXA."""
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise ValueError("Only a mission name or integer index may be used to address an archive object")
        if key not in (MISSION, 0, -1):
            raise KeyError(key)
        return self.missions[0]

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[XMMPointed]:
        return iter(self.missions)

    def get_current_data_path(self, mission: XMMPointed | str, obs_id: str) -> str:
        """Where the products of ``obs_id`` are, with a trailing slash. DAXA moves a failed
        observation to ``failed_data/``; nothing is moved here, so this is always the
        products folder.

        Raises:
            ValueError: another mission, or not an ObsID.
        """
        name = mission if isinstance(mission, str) else mission.name
        if name != MISSION:
            raise ValueError(f"The mission {name} is not a part of this Archive; the current missions are {MISSION}")
        try:
            return f"{self.layout.obs_dir(obs_id)}/"
        except LayoutError:
            raise ValueError(f"The passed ObsID ({obs_id}) does not match the pattern expected for {MISSION} identifiers.") from None

    construct_processed_data_path = get_current_data_path

    @property
    def observation_summaries(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{mission: {obsid: {inst: {...}}}}``: each ingested observation's odfingest
        summary as DAXA's parse_odf_sum gives it, for the archive's instruments (an
        observation not ingested yet, or whose summary is unreadable, is left out)."""
        out: dict[str, dict[str, Any]] = {}
        for obsid in self.obsids:
            try:
                summary = self.summary(obsid).to_daxa_dict()
            except (LayoutError, SummaryParseError):
                continue
            out[obsid] = {inst: info for inst, info in summary.items() if inst in self.instruments}
        return {MISSION: out}

    def info(self) -> None:
        """Print DAXA's summary of the archive."""
        from daxa_xmm.daxa.archive_build import print_info

        print_info(self.archive_name, self.missions, self.final_process_success[MISSION])

    def save(self) -> None:
        """Nothing to do: every record is on disk as it is made (DAXA saves them here)."""

    def update(self) -> None:
        """DAXA re-runs the missions' filters against the XSA; not available here."""
        from daxa_xmm.daxa.mission import XsaOnlyError

        raise XsaOnlyError("update() asks the XMM-Newton Science Archive for new observations; add their ODF folders to "
                           "the archive folder and make the Archive again")

    def delete_raw_data(self, force_del: bool = False, all_raw_data: bool = False) -> None:
        """Refused: the ODF folder is the user's archive, which daxa-xmm never writes to."""
        raise ConfigError(f"daxa-xmm never deletes or writes the ODF folder {self.layout.raw_root}; remove it yourself")

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
