"""Whether an observation has anything to redo, read from its manifest before Prefect runs.

A re-run of a finished archive should cost a read of each manifest, not a subflow per
observation (BENCHMARKS.md: about 2 s each). The check walks the calls the archive flow
would make (daxa_xmm.pipeline.walk), in its chains, folding in the identity tokens of what each
call reads exactly as the flow does, and asks the manifest whether each is up to date. Any
doubt (a missing summary, an unreadable log, a stale calibration index, a forced step)
means "run it": the subflow then decides call by call, as before.
"""

from __future__ import annotations

__all__ = ["UP_TO_DATE", "observation_up_to_date", "finished_observations", "up_to_date_outcome"]

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.summary import read_observation_record
from daxa_xmm.pipeline.identity import record_token, with_upstream
from daxa_xmm.pipeline.manifest import Manifest, is_up_to_date, load_manifest
from daxa_xmm.pipeline.stages import by_unit
from daxa_xmm.pipeline.step_run import calibration_stale, ccf_paths
from daxa_xmm.pipeline.walk import ChainVisitor, observation_input, select_observation_units, walk_observation
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.version import parse_sas_version

#: What the report says of an observation a re-run found finished (no subflow was started).
UP_TO_DATE = "up to date: nothing to redo"


def finished_observations(layout: ArchiveLayout, obsids: Sequence[str], config: ProcessingConfig, sas_version: str,
                          env: Mapping[str, str] | None = None) -> list[str]:
    """The observations of ``obsids`` with nothing to redo (the calibration folders are
    ``SAS_CCFPATH`` of ``env``, default this process's environment)."""
    folders = ccf_paths(os.environ if env is None else env)
    return [o for o in obsids if observation_up_to_date(layout, o, config, sas_version, folders)]


def up_to_date_outcome(obsid: str) -> dict[str, Any]:
    """The archive report's outcome of an observation found finished."""
    return {"obsid": obsid, "status": "ok", "message": UP_TO_DATE}


class _NeedsWork(Exception):
    """Some call of the observation must run."""


def _checker(layout: ArchiveLayout, manifest: Manifest, sas_version: str, ccf_folders: Sequence[Path]) -> ChainVisitor:
    """A visitor that folds each call's token as the flow's Chain.run_work does (each unit of
    a stage from the tokens before the stage), and stops at the first call that must run (a
    stale calibration index makes cifbuild one)."""

    def check(work: Sequence[SasCall], base: list[str]) -> list[str]:
        made: list[str] = []
        for group in by_unit(work):
            mine: list[str] = []
            for item in group:
                if item.step == "cif_build" and calibration_stale(layout, item, list(ccf_folders)) is not None:
                    raise _NeedsWork("the calibration index is stale")
                if not is_up_to_date(manifest, with_upstream(item, base + mine), sas_version):
                    raise _NeedsWork(f"{item.step} [{item.unit}]")
                mine.append(record_token(manifest.get(item.unit, item.step)))
            made += mine
        return base + made

    return check


def observation_up_to_date(layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: str,
                           ccf_folders: Sequence[Path]) -> bool:
    """True when every call the flow would make for ``obsid`` is up to date (nothing to run)."""
    if config.force:
        return False
    manifest_path = layout.manifest(obsid)
    if not manifest_path.exists():
        return False
    try:
        manifest = load_manifest(manifest_path, obsid)
        record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
        si = observation_input(layout, record, config, parse_sas_version(sas_version))
        walk_observation(si, lambda: select_observation_units(si), _checker(layout, manifest, sas_version, ccf_folders))
        return True
    except (_NeedsWork, DaxaXmmError, OSError, ValueError):
        return False
