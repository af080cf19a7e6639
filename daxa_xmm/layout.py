"""Where everything lives on disk: raw ODFs, products, logs, working folders, manifests.

Every product path in daxa-xmm comes from here, so a newcomer finds all names in one file
and no module invents its own. ObsIDs are checked to be 10 digits and every path is checked
to stay inside its root: an ObsID like ``../x`` or a symlink leading out is refused.

Layout of the output tree (one folder per ObsID)::

    <out>/<obsid>/ccf.cif                       cifbuild
    <out>/<obsid>/odf/                          the ODF, unpacked, when it came gzipped
    <out>/<obsid>/<rev>_<obsid>_SCX00000SUM.SAS odfingest
    <out>/<obsid>/events/                       chains, cleaned and merged event lists
    <out>/<obsid>/cleaning/                     emanom logs, espfilt GTIs and histograms
    <out>/<obsid>/background/                   espfilt all-good (background) event lists
    <out>/<obsid>/images/                       count images and exposure maps per band
    <out>/<obsid>/logs/                         stdout/stderr of every SAS call
    <out>/<obsid>/work/<unit>-<step>/           SAS working directories (scratch)
    <out>/<obsid>/manifest.json                 what ran, with what, and what it made
    <out>/<obsid>/report-cache.json             the report's numbers read from each product (a cache)
    <out>/report.json, report.html              the archive report
    <out>/exposures.csv                         the report's science summary, one row per exposure
"""

from __future__ import annotations

__all__ = [
    "ArchiveLayout",
    "check_obsid",
    "check_writable",
    "real_path",
    "select_obsids",
    "band_label",
    "ODF_SUFFIXES",
    "summary_name",
    "attitude_name",
    "pn_events_name",
    "mos_events_name",
    "rgs_events_name",
    "rgs_merged_name",
]

import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from daxa_xmm.errors import LayoutError
from daxa_xmm.odf.models import FILE_INST

# ASCII digits only, whole string: `\d` also takes non-ASCII digits and `$` a final newline.
_OBSID = re.compile(r"[0-9]{10}")
#: What we accept as ODF constituents: plain FITS/ASC as the XSA delivers them, or gzipped.
ODF_SUFFIXES: tuple[str, ...] = (".FIT", ".ASC", ".SAS", ".FIT.gz", ".ASC.gz", ".fit", ".asc")


def check_obsid(obsid: str) -> str:
    """Return ``obsid`` if it is exactly 10 digits, else raise LayoutError naming it."""
    if not isinstance(obsid, str) or not _OBSID.fullmatch(obsid):
        raise LayoutError(f"ObsID {obsid!r} is not 10 digits (e.g. '0201903501')")
    return obsid


def select_obsids(layout: ArchiveLayout, obsids: list[str] | None) -> list[str]:
    """The ObsIDs a run processes: ``obsids`` (each checked to be in the archive), else all.

    Raises:
        LayoutError: the archive folder is missing or holds no ObsID folder, or an ObsID
            asked for is not in it (naming them all).
    """
    present = layout.obsids()
    if obsids is None:
        if not present:
            raise LayoutError(f"archive {layout.raw_root} holds no ObsID folders (10-digit names)")
        return present
    missing = [o for o in obsids if o not in present]
    if missing:
        raise LayoutError(f"ObsID(s) {', '.join(missing)} not found in archive {layout.raw_root}")
    return [check_obsid(o) for o in obsids]


def band_label(lo_ev: float, hi_ev: float) -> str:
    """``0.50-2.00keV``: the band part of image names, in keV (DAXA mislabelled eV as keV)."""
    return f"{lo_ev / 1000:.2f}-{hi_ev / 1000:.2f}keV"


def real_path(path: Path, what: str) -> Path:
    """``path`` with ``~`` expanded and symlinks followed; a symlink loop (or a link that
    cannot be read) is refused naming ``what`` and the path, not raised as a traceback."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11-3.12: RuntimeError("Symlink loop from ...")
        raise LayoutError(f"{what}: {path} cannot be followed to a real folder ({exc}): a symlink loop?") from None


def check_writable(folder: Path, what: str = "out") -> Path:
    """Check that files can be written in ``folder`` (or, while it does not exist, in the
    nearest folder above it, where it will be made), before any SAS call: a read-only disk
    or folder found after cifbuild wastes the run. Nothing is left behind.

    As root, permission bits say nothing; a file really made and removed does.

    Raises:
        LayoutError: naming ``what``, the folder and the reason (``Read-only file system``).
    """
    here = Path(folder).absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".daxa-xmm-write-test-", dir=here)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise LayoutError(f"{what}: cannot write in {folder} ({exc.strerror or exc}): choose a folder you can write") from None
    return folder


@functools.lru_cache(maxsize=64)
def _resolved_root(root: Path) -> Path:
    """A root's real path, once per process: a run asks for thousands of paths under the same
    two roots, which are absolute (``ArchiveLayout`` makes them so). The paths themselves are
    resolved every time: a symlink below a root may change."""
    return real_path(root, "archive root")


def _inside(root: Path, path: Path) -> Path:
    """Resolve ``path`` (following symlinks) and refuse it unless it stays under ``root``."""
    real_root = _resolved_root(root)
    real = real_path(path, "path")
    if real != real_root and real_root not in real.parents:
        raise LayoutError(f"path {path} leaves the archive root {root}")
    return path


@dataclass(frozen=True)
class ArchiveLayout:
    """The raw archive and the output tree.

    Attributes:
        raw_root: folder holding one ODF folder per ObsID (``<raw_root>/<obsid>/``, or
            ``<raw_root>/<obsid>/odf/`` as DAXA downloads it).
        out_root: folder under which each ObsID gets its products folder.
    """

    raw_root: Path
    out_root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_root", Path(self.raw_root).absolute())
        object.__setattr__(self, "out_root", Path(self.out_root).absolute())

    # --- raw side -------------------------------------------------------------------------
    def obsids(self) -> list[str]:
        """ObsIDs present in the raw archive (folders named with 10 digits), sorted."""
        if not self.raw_root.is_dir():
            raise LayoutError(f"archive folder {self.raw_root} does not exist")
        return sorted(p.name for p in self.raw_root.iterdir() if p.is_dir() and _OBSID.fullmatch(p.name))

    def odf_dir(self, obsid: str) -> Path:
        """The folder holding the ODF constituents of ``obsid``."""
        base = _inside(self.raw_root, self.raw_root / check_obsid(obsid))
        nested = base / "odf"
        return _inside(self.raw_root, nested) if nested.is_dir() else base

    def odf_files(self, obsid: str) -> list[Path]:
        """ODF constituents of ``obsid``: ``{rev}_{obsid}_*`` files with an accepted suffix."""
        folder = self.odf_dir(obsid)
        if not folder.is_dir():
            raise LayoutError(f"ObsID {obsid}: no ODF folder at {folder}")
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and f"_{obsid}_" in p.name and p.name.endswith(ODF_SUFFIXES)
        )
        for p in files:  # a constituent linked from outside is refused as a linked ObsID folder is
            if p.is_symlink():
                _inside(self.raw_root, p)
        return files

    def odf_sum_asc(self, obsid: str) -> Path:
        """The ODF's own summary ``{rev}_{obsid}_SCX00000SUM.ASC`` (in the unpacked copy
        when the archive only holds it gzipped)."""
        files = self.odf_files(obsid)
        if not any(p.name.endswith("_SCX00000SUM.ASC") for p in files) and self.odf_unpacked_dir(obsid).is_dir():
            files = sorted(self.odf_unpacked_dir(obsid).iterdir())
        for p in files:
            if p.name.endswith("_SCX00000SUM.ASC"):
                return p
        gz = " (it is gzipped: unpacked when the observation is processed)" if any(
            p.name.endswith("_SCX00000SUM.ASC.gz") for p in self.odf_files(obsid)) else ""
        raise LayoutError(f"ObsID {obsid}: no *_SCX00000SUM.ASC in {self.odf_dir(obsid)}{gz or ' (not an ODF?)'}")

    def odf_is_gzipped(self, obsid: str) -> bool:
        """Whether any ODF constituent of ``obsid`` is gzipped (``*.gz``); False without a folder."""
        if not self.odf_dir(obsid).is_dir():
            return False
        return any(p.name.endswith(".gz") for p in self.odf_files(obsid))

    def odf_unpacked_dir(self, obsid: str) -> Path:
        """``<out>/<obsid>/odf/``: the ODF with its gzipped constituents unpacked (the
        archive itself is never written to)."""
        return self.obs_dir(obsid) / "odf"

    def odf_input_dir(self, obsid: str) -> Path:
        """The folder SAS reads the ODF from: the archive's own, or the unpacked copy
        when constituents are gzipped (:func:`daxa_xmm.odf.unpack.unpack_odf` makes it)."""
        return self.odf_unpacked_dir(obsid) if self.odf_is_gzipped(obsid) else self.odf_dir(obsid)

    # --- output side ----------------------------------------------------------------------
    def obs_dir(self, obsid: str) -> Path:
        return _inside(self.out_root, self.out_root / check_obsid(obsid))

    def ccf(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "ccf.cif"

    def summary(self, obsid: str, revolution: str) -> Path:
        """The odfingest summary ``{rev}_{obsid}_SCX00000SUM.SAS`` in the products folder."""
        return self.obs_dir(obsid) / summary_name(obsid, revolution)

    def find_summary(self, obsid: str) -> Path | None:
        """The odfingest summary if one was made, whatever its revolution."""
        hits = sorted(self.obs_dir(obsid).glob(f"*_{obsid}_SCX00000SUM.SAS"))
        return hits[0] if hits else None

    def events_dir(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "events"

    def cleaning_dir(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "cleaning"

    def background_dir(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "background"

    def images_dir(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "images"

    def logs_dir(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "logs"

    def work_dir(self, obsid: str, name: str) -> Path:
        """A SAS working directory; ``name`` is usually ``<unit>-<step>``."""
        if "/" in name or name in ("", ".", ".."):
            raise LayoutError(f"work folder name {name!r} is not a plain name")
        return self.obs_dir(obsid) / "work" / name

    def manifest(self, obsid: str) -> Path:
        return self.obs_dir(obsid) / "manifest.json"

    def report_cache(self, obsid: str) -> Path:
        """What the report read of each product of ``obsid``, keyed by the product's size and
        time (:mod:`daxa_xmm.report.science`): a re-report reads only what changed."""
        return self.obs_dir(obsid) / "report-cache.json"

    # --- product names (SAS's own names for chain outputs) ---------------------------------
    def attitude(self, obsid: str) -> Path:
        return self.events_dir(obsid) / attitude_name(obsid)

    def pn_events(self, obsid: str, exp_id: str, oot: bool = False) -> Path:
        return self.events_dir(obsid) / pn_events_name(obsid, exp_id, oot)

    def mos_events(self, obsid: str, inst: str, exp_id: str) -> Path:
        return self.events_dir(obsid) / mos_events_name(obsid, inst, exp_id)

    def rgs_events(self, obsid: str, inst: str, exp_id: str) -> Path:
        return self.events_dir(obsid) / rgs_events_name(obsid, inst, exp_id)

    def chain_events(self, obsid: str, inst: str, exp_id: str) -> Path:
        """The uncleaned event list the PN or MOS chain made for one sub-exposure."""
        if inst == "PN":
            return self.pn_events(obsid, exp_id)
        return self.mos_events(obsid, inst, exp_id)

    def emanom_log(self, obsid: str, inst: str, exp_id: str) -> Path:
        return self.cleaning_dir(obsid) / f"{FILE_INST[inst]}{exp_id}-anom.log"

    def espfilt_gti(self, obsid: str, inst: str, exp_id: str) -> Path:
        return self.cleaning_dir(obsid) / f"{FILE_INST[inst]}{exp_id}-gti.fits"

    def espfilt_hist(self, obsid: str, inst: str, exp_id: str) -> Path:
        return self.cleaning_dir(obsid) / f"{FILE_INST[inst]}{exp_id}-hist.qdp"

    def espfilt_allevc(self, obsid: str, inst: str, exp_id: str, oot: bool = False) -> Path:
        suffix = "allevcoot" if oot else "allevc"
        return self.background_dir(obsid) / f"{FILE_INST[inst]}{exp_id}-{suffix}.fits"

    def clean_events(self, obsid: str, inst: str, exp_id: str, oot: bool = False) -> Path:
        """``{obsid}_{pn|mos1|mos2}_{exp}_clean[_oot]_evts.fits``, as the real samples are named."""
        kind = "clean_oot" if oot else "clean"
        return self.events_dir(obsid) / f"{obsid}_{FILE_INST[inst]}_{exp_id}_{kind}_evts.fits"

    def merged_events(self, obsid: str, inst: str, kind: str = "clean") -> Path:
        """Merged list per instrument; ``kind`` is ``clean`` or ``clean_oot`` (events/), or
        ``allevc`` or ``allevcoot`` (espfilt's all-good lists, background/)."""
        folder = self.background_dir(obsid) if kind.startswith("allevc") else self.events_dir(obsid)
        return folder / f"{obsid}_{FILE_INST[inst]}_merged_{kind}_evts.fits"

    def image(self, obsid: str, inst: str, lo_ev: float, hi_ev: float) -> Path:
        return self.images_dir(obsid) / f"{obsid}_{FILE_INST[inst]}_{band_label(lo_ev, hi_ev)}img.fits"

    def expmap(self, obsid: str, inst: str, lo_ev: float, hi_ev: float) -> Path:
        return self.images_dir(obsid) / f"{obsid}_{FILE_INST[inst]}_{band_label(lo_ev, hi_ev)}expmap.fits"


# --- SAS's own file names, usable without a layout (the stand-in writes these too) ---------
def summary_name(obsid: str, revolution: str) -> str:
    return f"{revolution}_{obsid}_SCX00000SUM.SAS"


def attitude_name(obsid: str) -> str:
    return f"P{obsid}OBX000ATTTSR0000.FIT"


def pn_events_name(obsid: str, exp_id: str, oot: bool = False) -> str:
    return f"P{obsid}PN{exp_id}{'OOEVLI' if oot else 'PIEVLI'}0000.FIT"


def mos_events_name(obsid: str, inst: str, exp_id: str) -> str:
    return f"P{obsid}{inst}{exp_id}MIEVLI0000.FIT"


def rgs_events_name(obsid: str, inst: str, exp_id: str) -> str:
    """The filtered list rgsproc's ``3:filter`` stage writes (DAXA's cleaned_rgs_event_lists)."""
    return f"P{obsid}{inst}{exp_id}EVENLI0000.FIT"


def rgs_merged_name(obsid: str, inst: str, exp_id: str) -> str:
    """The merged list rgsproc's ``1:events`` stage writes and ``2:angles`` updates in place
    (DAXA 0.3.7 ``assemble.py``, rgs_events: ``P{obsid}{inst}{exp}merged0000.FIT``)."""
    return f"P{obsid}{inst}{exp_id}merged0000.FIT"
