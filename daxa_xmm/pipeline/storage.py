"""What a finished observation keeps on disk: the storage policy (``--storage``).

Real SAS products run to gigabytes per observation, and most of that is what the pipeline
reads on the way (DAXA's users asked for a storage-saving mode: DAXA issues #80 and #429):

- ``all`` keeps everything (the default);
- ``products`` removes the working folders (``work/``: what SAS left beside its outputs)
  and the ODF constituents unpacked from gzipped archives (their summary ``*SUM.ASC``
  stays, so the plan-first check still reads the observation); every product stays;
- ``final`` also removes the products of the table's intermediate steps
  (:attr:`~daxa_xmm.steps.spec.Stage.intermediate`: the chains' raw event lists, but the
  attitude file), keeping what users analyse (cleaned and merged lists, images, exposure maps, RGS products, the
  flare filtering's good time, the calibration index, logs, manifest and report).

Nothing is removed from an observation until every one of its records is ``ok`` (or a
data-quality outcome, with what it fed): what reads a file is made before the file goes,
and a partial or failed observation, or one a partial run (``--steps``) left unfinished,
keeps all it needs to resume. A removed product's record stays ``ok`` and says so (``removed``), so
a re-run with a leaner policy frees space without redoing anything, and a call that must
run later (a forced step, new settings) and reads a removed product has it remade first,
with its identity kept (:mod:`daxa_xmm.pipeline.observation_run`). The archive's own ODFs
are never touched: every path removed lies inside the observation's products folder.
"""

from __future__ import annotations

__all__ = ["StoragePolicy", "StorageOutcome", "apply_storage", "apply_storage_all", "removed_inputs"]

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daxa_xmm.errors import LayoutError, is_disk_full
from daxa_xmm.layout import ArchiveLayout, real_path
from daxa_xmm.pipeline.locks import ObservationBusy, observation_lock
from daxa_xmm.pipeline.manifest import Manifest
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.pipeline.stages import PIPELINE, pipeline_step
from daxa_xmm.sas.calls import SasCall

log = logging.getLogger(__name__)

StoragePolicy = Literal["all", "products", "final"]

#: The steps whose products ``final`` removes.
_INTERMEDIATE = frozenset(s.name for s in PIPELINE if s.intermediate)


@dataclass(frozen=True)
class StorageOutcome:
    """What the policy did to one observation: bytes freed, or why nothing was removed."""

    obsid: str
    freed_bytes: int = 0
    kept_because: str = ""


def _size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def _inside(obs_dir: Path, path: Path) -> bool:
    """True when removing ``path`` touches only ``obs_dir``: its folder, symlinks followed,
    lies there (``path`` itself may be a link: removing it removes the link)."""
    try:
        real, folder = real_path(obs_dir, "products folder"), real_path(path.parent, "path")
    except LayoutError:
        return False
    return folder == real or real in folder.parents


def _scratch(layout: ArchiveLayout, obsid: str) -> list[Path]:
    """``products``' removals: the working folders, and the unpacked ODF but its summary."""
    out = [layout.obs_dir(obsid) / "work"]
    unpacked = layout.odf_unpacked_dir(obsid)
    if unpacked.is_dir():
        out += [p for p in sorted(unpacked.iterdir()) if not p.name.endswith("SUM.ASC")]
    return [p for p in out if p.exists() or p.is_symlink()]


def apply_storage(layout: ArchiveLayout, obsid: str, policy: StoragePolicy) -> StorageOutcome:
    """Remove what ``policy`` does not keep of ``obsid``, once every record is ok.

    The manifest says which products are removed before they are: an interruption leaves
    a file the manifest calls removed (harmless: it is remade or removed next time), never a
    missing product the manifest still counts on.
    """
    if policy == "all":
        return StorageOutcome(obsid)
    obs_dir = layout.obs_dir(obsid)
    store = ManifestStore(layout.manifest(obsid), obsid)
    manifest = store.snapshot()
    not_ok = _unfinished(manifest)
    if not manifest.records or not_ok:
        return StorageOutcome(obsid, kept_because=f"not finished ({', '.join(not_ok) or 'no records'})")
    drop = [p for p in _scratch(layout, obsid) if _inside(obs_dir, p)]
    if policy == "final":
        chosen = _intermediates(manifest, obs_dir, keep={str(layout.attitude(obsid))})

        def mark(m: Manifest) -> None:
            for key, paths in chosen.items():
                rec = m.records.get(key)
                if rec is not None:
                    known = {str(p) for p in rec.removed}
                    m.put(rec.model_copy(update={"removed": rec.removed + [p for p in paths if str(p) not in known]}))

        if chosen:
            store.update(mark)
        drop += [p for paths in chosen.values() for p in paths if p.exists()]
    freed = 0
    for path in dict.fromkeys(drop):  # two records may name one file (the chain's attitude list)
        try:
            freed += _size(path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # gone already: what the policy wants
            continue
    if freed:
        log.info("%s: --storage %s freed %.1f MB", obsid, policy, freed / 1e6)
    return StorageOutcome(obsid, freed)


def apply_storage_all(layout: ArchiveLayout, obsids: Sequence[str], policy: StoragePolicy) -> list[StorageOutcome]:
    """:func:`apply_storage` for each observation, holding its lock (one another run is
    processing is left alone); a file that cannot be removed is reported, not raised."""
    out: list[StorageOutcome] = []
    if policy == "all":
        return out
    for obsid in obsids:
        try:
            with observation_lock(layout.obs_dir(obsid)):
                out.append(apply_storage(layout, obsid, policy))
        except ObservationBusy as exc:
            out.append(StorageOutcome(obsid, kept_because=str(exc)))
        except OSError as exc:
            if is_disk_full(exc):  # removing frees space; a full disk cannot stop it, but say so
                log.warning("%s: --storage %s: %s", obsid, policy, exc)
            else:
                log.warning("%s: --storage %s stopped: %s", obsid, policy, exc)
            out.append(StorageOutcome(obsid, kept_because=f"{type(exc).__name__}: {exc}"))
    freed = sum(o.freed_bytes for o in out)
    if freed:
        log.warning("--storage %s: %.1f MB freed over %d observation(s)", policy, freed / 1e6,
                    sum(1 for o in out if o.freed_bytes))
    return out


def _unfinished(manifest: Manifest) -> list[str]:
    """Why ``manifest``'s observation is not finished (empty when it is): a record that is
    not ok. A data-quality outcome is finished, and so is what it fed (``skipped``: never to
    run with these data); a step a partial run did not select (``skipped`` too) is not."""
    why = set()
    for rec in manifest.records.values():
        if rec.status == "skipped" and "not selected" in rec.message:
            why.add("steps not selected")
        elif rec.status not in ("ok", "data_quality", "skipped"):
            why.add(rec.status)
    return sorted(why)


def _intermediates(manifest: Manifest, obs_dir: Path, keep: set[str]) -> dict[str, list[Path]]:
    """The products of intermediate steps not removed yet, by record key, but ``keep``
    (the attitude file the chains write: small, and eexpmap reads it for every new band)."""
    out: dict[str, list[Path]] = {}
    for key, rec in manifest.records.items():
        if pipeline_step(rec.step) in _INTERMEDIATE:
            gone = {str(p) for p in rec.removed} | keep
            paths = [Path(p) for p in rec.products if str(p) not in gone and _inside(obs_dir, Path(p))]
            if paths:
                out[key] = paths
    return out


def removed_inputs(manifest: Manifest, call: SasCall) -> list[Path]:
    """The removed products ``call`` reads (named in its argv): they must be remade first."""
    removed = {str(p): Path(p) for r in manifest.records.values() for p in r.removed if not Path(p).exists()}
    if not removed:
        return []
    return [path for text, path in removed.items() if any(text in arg for arg in call.argv)]
