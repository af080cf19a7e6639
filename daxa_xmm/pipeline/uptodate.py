"""Whether an observation has anything to redo, read from its manifest before Prefect runs.

A re-run of a finished archive should cost a read of each manifest, not a subflow per
observation (BENCHMARKS.md: about 2 s each). The check walks the calls the archive flow
would make (daxa_xmm.pipeline.walk), in its chains, folding in the identity tokens of what each
call reads exactly as the flow does, and asks the manifest whether each is up to date. Any
doubt (a missing summary, an unreadable log, a stale calibration index, a forced step)
means "run it": the subflow then decides call by call, as before.
"""

from __future__ import annotations

__all__ = ["UP_TO_DATE", "PARALLEL_FROM", "observation_up_to_date", "finished_observations", "up_to_date_outcome"]

import functools
import multiprocessing
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.summary import read_observation_record
from daxa_xmm.pipeline.identity import record_token, with_upstream
from daxa_xmm.pipeline.manifest import Manifest, is_up_to_date, load_manifest
from daxa_xmm.pipeline.snapshot import snapshot
from daxa_xmm.pipeline.stages import by_unit
from daxa_xmm.pipeline.step_run import calibration_stale, ccf_paths
from daxa_xmm.pipeline.walk import ChainVisitor, observation_input, select_observation_units, walk_observation
from daxa_xmm.sas.calindex import CcfListing, available_ccfs
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.version import parse_sas_version

#: What the report says of an observation a re-run found finished (no subflow was started).
UP_TO_DATE = "up to date: nothing to redo"


#: From this many observations the check is shared among processes (:func:`finished_observations`):
#: below it, starting them costs more than it saves (about 1 s each, at 4-7 ms per observation).
PARALLEL_FROM = 2000
#: Most observations one process checks at a time (small: a stopped check waits for one
#: batch); fewer when there are too few to give each process four.
BATCH = 100


def finished_observations(layout: ArchiveLayout, obsids: Sequence[str], config: ProcessingConfig, sas_version: str,
                          env: Mapping[str, str] | None = None, workers: int | None = None) -> list[str]:
    """The observations of ``obsids`` with nothing to redo, in their order (the calibration
    folders are ``SAS_CCFPATH`` of ``env``, default this process's environment).

    Each observation is decided alone (:func:`observation_up_to_date`), so a large archive
    is checked by several processes at once: ``workers`` of them (default: one per usable
    core, at most 8, from :data:`PARALLEL_FROM` observations on; 1 checks in this process).
    They are started fresh (``spawn``: nothing of this process's threads, Prefect's
    included, is copied) and decide exactly as this process would.
    """
    folders = ccf_paths(os.environ if env is None else env)
    check = functools.partial(_finished, layout, config, sas_version, folders)
    if workers is None:
        workers = min(_usable_cores(), 8) if len(obsids) >= PARALLEL_FROM else 1
    workers = min(workers, len(obsids))
    if workers <= 1:
        return check(obsids)
    size = max(1, min(BATCH, -(-len(obsids) // (4 * workers))))
    batches = [obsids[i:i + size] for i in range(0, len(obsids), size)]
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_worker)
    try:
        return [o for found in pool.map(check, batches) for o in found]
    finally:  # stopped (Ctrl-C in this process): the batches not begun are dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _finished(layout: ArchiveLayout, config: ProcessingConfig, sas_version: str, folders: Sequence[Path],
              obsids: Sequence[str]) -> list[str]:
    """The observations of ``obsids`` with nothing to redo, checked in this process.

    The calibration folders are listed once for all of them (a real ``SAS_CCFPATH`` holds
    thousands of files; listed per observation, that was 14% of the check with the
    stand-in's few): they are decided against the folders as they were when this began.
    """
    listing = available_ccfs(folders)
    return [o for o in obsids if observation_up_to_date(layout, o, config, sas_version, folders, listing)]


def _usable_cores() -> int:
    """The cores this process may run on (its affinity where the system says, else all)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _quiet_worker() -> None:
    """A checking process leaves Ctrl-C to the process that started it, which stops the check."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def up_to_date_outcome(obsid: str) -> dict[str, Any]:
    """The archive report's outcome of an observation found finished."""
    return {"obsid": obsid, "status": "ok", "message": UP_TO_DATE}


class _NeedsWork(Exception):
    """Some call of the observation must run."""


def _checker(layout: ArchiveLayout, manifest: Manifest, sas_version: str, ccf_folders: Sequence[Path],
             listing: CcfListing | None) -> ChainVisitor:
    """A visitor that folds each call's token as the flow's Chain.run_work does (each unit of
    a stage from the tokens before the stage), and stops at the first call that must run (a
    stale calibration index makes cifbuild one)."""

    def check(work: Sequence[SasCall], base: list[str]) -> list[str] | None:
        made: list[str] = []
        unusable = False
        for group in by_unit(work):
            mine: list[str] = []
            for item in group:
                if item.step == "cif_build" and calibration_stale(layout, item, list(ccf_folders), listing) is not None:
                    raise _NeedsWork("the calibration index is stale")
                if not is_up_to_date(manifest, with_upstream(item, base + mine), sas_version):
                    raise _NeedsWork(f"{item.step} [{item.unit}]")
                rec = manifest.get(item.unit, item.step)
                mine.append(record_token(rec))
                if rec is not None and rec.status == "data_quality":  # the run stops this unit's chain here
                    unusable = True
                    break
            made += mine
        return None if unusable else base + made

    return check


def observation_up_to_date(layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: str,
                           ccf_folders: Sequence[Path], ccf_listing: CcfListing | None = None) -> bool:
    """True when every call the flow would make for ``obsid`` is up to date (nothing to run)
    (``ccf_listing``: :func:`~daxa_xmm.sas.calindex.available_ccfs` of ``ccf_folders``, when
    already made; default: listed for this observation)."""
    if config.force:
        return False
    layout = snapshot(layout)  # its folders looked up once (daxa_xmm.pipeline.snapshot)
    manifest_path = layout.manifest(obsid)
    if not manifest_path.exists():
        return False
    try:
        manifest = load_manifest(manifest_path, obsid)
        record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
        si = observation_input(layout, record, config, parse_sas_version(sas_version))
        walk_observation(si, lambda: select_observation_units(si), _checker(layout, manifest, sas_version, ccf_folders, ccf_listing))
        return True
    except (_NeedsWork, DaxaXmmError, OSError, ValueError):
        return False
