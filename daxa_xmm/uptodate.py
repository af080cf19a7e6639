"""Whether an observation has anything to redo, read from its manifest before Prefect runs.

A re-run of a finished archive should cost a read of each manifest, not a subflow per
observation (BENCHMARKS.md: about 2 s each). The check walks the calls the archive flow
would make (daxa_xmm.pipeline), in its chains, folding in the identity tokens of what each
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

from daxa_xmm.calls import SasCall
from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.identity import record_token, with_upstream
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.manifest import Manifest, is_up_to_date, load_manifest
from daxa_xmm.models import EPIC
from daxa_xmm.pipeline import accepted_ccds, epic_unit_calls, head_calls, instrument_calls, rgs_unit_calls
from daxa_xmm.sasversion import parse_sas_version
from daxa_xmm.selection import select_units
from daxa_xmm.step_run import calibration_stale, ccf_paths
from daxa_xmm.summary import read_observation_record, read_odf_summary

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


def _chain(manifest: Manifest, calls: Sequence[SasCall], base: list[str], sas_version: str) -> list[str]:
    """The tokens after ``calls``, each up to date with the tokens before it (as _Chain.run)."""
    made: list[str] = []
    for call in calls:
        if not is_up_to_date(manifest, with_upstream(call, base + made), sas_version):
            raise _NeedsWork(f"{call.step} [{call.unit}]")
        made.append(record_token(manifest.get(call.unit, call.step)))
    return base + made


def observation_up_to_date(layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: str,
                           ccf_folders: Sequence[Path]) -> bool:
    """True when every call the flow would make for ``obsid`` is up to date (nothing to run)."""
    if config.force:
        return False
    manifest_path = layout.manifest(obsid)
    if not manifest_path.exists():
        return False
    try:
        return _walk(layout, obsid, config, sas_version, ccf_folders, load_manifest(manifest_path, obsid))
    except (_NeedsWork, DaxaXmmError, OSError, ValueError):
        return False


def _walk(layout: ArchiveLayout, obsid: str, config: ProcessingConfig, sas_version: str,
          ccf_folders: Sequence[Path], manifest: Manifest) -> bool:
    sasv = parse_sas_version(sas_version)
    record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
    head = head_calls(layout, record, config)
    if calibration_stale(layout, head[0], list(ccf_folders)) is not None:
        return False
    base = _chain(manifest, head, [], sas_version)
    summary_path = layout.summary(obsid, record.revolution)
    summary = read_odf_summary(summary_path, obs_id=obsid)
    units = select_units(summary, instruments=tuple(config.instruments), process_unscheduled=config.process_unscheduled)
    made: dict[str, list[str]] = {}
    for unit in units:
        if unit.inst in EPIC:
            tokens = base
            for i, group in enumerate(epic_unit_calls(layout, unit, config, sasv, summary_path)):
                accepted = accepted_ccds(layout, unit, config, sasv) if i == 2 else None
                if accepted is not None:
                    group = epic_unit_calls(layout, unit, config, sasv, summary_path, accepted)[2]
                tokens = _chain(manifest, group, tokens, sas_version)
            made.setdefault(unit.inst, []).extend(tokens)
        else:
            _chain(manifest, rgs_unit_calls(layout, unit, config, summary_path), base, sas_version)
    for inst, tokens in made.items():
        merges, bands = instrument_calls(layout, obsid, inst, [u for u in units if u.inst == inst], config, sas_version)
        after = tokens
        for plan in merges:
            if plan.single_source is not None and not Path(plan.dest).exists():
                return False
            after = _chain(manifest, plan.calls, after, sas_version)
        for band in bands:
            _chain(manifest, band, after, sas_version)
    return True
