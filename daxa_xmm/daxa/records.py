"""DAXA's processing records (``process_success``, ``process_errors``...), read from disk.

DAXA keeps them in the Archive object, so they die with the Python session and one bad
file loses a whole step's. Here they are derived, whenever asked, from what is on disk
already: each observation's manifest (one record per SAS call: status, parsed SAS errors
and warnings, log files) plus ``daxa_steps.json``, which notes which DAXA step functions
ran over the observation, their ``extra_info``, and units that could not even be planned.
A new session on the same output folder therefore sees the same records, and records of
the archive flow (``python -m flows.process_archive``) show up under DAXA's keys too.

Keys are DAXA's: ``[mission][step][key]`` where ``key`` is the ObsID (cif_build,
odf_ingest), ObsID+instrument+exposure (chains, emanom, espfilt, cleaning) or
ObsID+instrument (merge, images). A key made by several SAS calls (epchain's out-of-time
and normal runs, one image and exposure map per band) succeeded when all of them did.

A data-quality outcome (a fully flared exposure, an empty cleaned list, an image without WCS,
an exposure map without exposure: daxa_xmm.sas.quality) is no SAS error, and its records do
not read like one: ``process_success`` False, since nothing downstream may use the product,
and in ``process_errors`` the check's own words (:func:`daxa_quality`), never DAXA's
``<name> raised by <task> - <message>`` of a SAS error record. What it would have fed is
left out, as DAXA leaves out a unit whose prerequisite did not succeed.
"""

from __future__ import annotations

__all__ = [
    "MISSION",
    "MissingStepError",
    "DaxaRecords",
    "daxa_key",
    "daxa_error",
    "daxa_quality",
    "daxa_warning",
    "read_records",
    "steps_run",
    "check_prerequisite",
    "save_step_info",
]

import contextlib
import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from daxa_xmm.atomic import atomic_write_json
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.manifest import StepRecord, load_manifest
from daxa_xmm.pipeline.stages import DAXA_PREREQUISITES, DAXA_STEPS, daxa_function
from daxa_xmm.sas.stderr import SasRecord

#: DAXA's mission name for pointed XMM-Newton observations.
MISSION = "xmm_pointed"

_INFO_FILE = "daxa_steps.json"
log = logging.getLogger(__name__)


class MissingStepError(ConfigError):
    """A step function was called before the step it needs had run on the archive."""


def daxa_error(record: SasRecord) -> str:
    """A parsed SAS error as DAXA words it in ``process_errors`` (``_common.parse_stderr``):
    ``noCounts raised by espfilt - All histo counts are zero!``."""
    return f"{record.name} raised by {record.task} - {record.message}"


def daxa_quality(record: StepRecord) -> str:
    """A data-quality outcome as ``process_errors`` holds it: what the check found, worded as
    no SAS error is (``data quality, not a SAS error: pnS003-gti.fits: no good time left after
    flare filtering: the exposure is fully flared (0 s of GTI; ...)``)."""
    return record.message.split(": ", 1)[1] if record.message.startswith(f"{record.step} [") else record.message


def daxa_warning(record: SasRecord) -> dict[str, str]:
    """A parsed SAS warning as DAXA keeps it in ``process_warnings``: a dict of
    ``originator`` (the task), ``name`` and ``message``, so a notebook's
    ``process_warnings[...][key][0]['name']`` works."""
    return {"originator": record.task, "name": record.name, "message": record.message}


def daxa_key(unit: str) -> str:
    """DAXA's key of a unit label: ``0201903501PN-clean`` -> ``0201903501PN``; others unchanged."""
    return unit.split("-", 1)[0]


@dataclass
class DaxaRecords:
    """The records, each ``{mission: {step: {key: value}}}`` (``final``: ``{mission: {obsid: bool}}``)."""

    success: dict[str, dict[str, dict[str, bool]]] = field(default_factory=lambda: {MISSION: {}})
    errors: dict[str, dict[str, dict[str, list[str]]]] = field(default_factory=lambda: {MISSION: {}})
    warnings: dict[str, dict[str, dict[str, list[dict[str, str]]]]] = field(default_factory=lambda: {MISSION: {}})
    logs: dict[str, dict[str, dict[str, str]]] = field(default_factory=lambda: {MISSION: {}})
    extra_info: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=lambda: {MISSION: {}})
    final: dict[str, dict[str, bool]] = field(default_factory=lambda: {MISSION: {}})
    raw_errors: dict[str, dict[str, dict[str, str]]] = field(default_factory=lambda: {MISSION: {}})
    #: ``{mission: [{step: {argument: value}}, ...]}``, in DAXA's step order, each step's latest call
    configurations: dict[str, list[dict[str, dict[str, Any]]]] = field(default_factory=lambda: {MISSION: []})

    def in_step_order(self) -> None:
        """Steps in DAXA's order, as a notebook ran them; every step that ran has its
        (maybe empty) dict in every table, as DAXA gives ``{}`` for a step without failures."""
        for table in (self.errors, self.warnings, self.raw_errors, self.logs, self.extra_info):
            for step in self.success[MISSION]:
                table[MISSION].setdefault(step, {})
        for every in (self.success, self.errors, self.warnings, self.raw_errors, self.logs, self.extra_info):
            _in_step_order(every)

    def _put(self, step: str, key: str, ok: bool, errors: list[str], warnings: list[dict[str, str]], log: str) -> None:
        success = self.success[MISSION].setdefault(step, {})
        success[key] = success.get(key, True) and ok
        if errors:
            self.errors[MISSION].setdefault(step, {}).setdefault(key, []).extend(errors)
        if warnings:
            self.warnings[MISSION].setdefault(step, {}).setdefault(key, []).extend(warnings)
        if log:
            logs = self.logs[MISSION].setdefault(step, {})
            logs[key] = logs.get(key, "") + log


def _in_step_order(table: dict[str, dict[str, Any]]) -> None:
    rank = {s: i for i, s in enumerate(DAXA_STEPS)}
    table[MISSION] = dict(sorted(table[MISSION].items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _info_path(layout: ArchiveLayout, obsid: str) -> Path:
    return layout.obs_dir(obsid) / _INFO_FILE


def _read_info(layout: ArchiveLayout, obsid: str) -> dict[str, Any]:
    path = _info_path(layout, obsid)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        data = None
        why = str(exc)
    else:
        why = "not a JSON object"
    if isinstance(data, dict):
        return data
    # one bad file costs only its own notes: kept aside, and the records start afresh
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}")
    with contextlib.suppress(OSError):
        shutil.copy2(path, aside)
    log.warning("ObsID %s: %s is unreadable (%s); kept as %s, its step notes start afresh", obsid, path, why, aside.name)
    return {}


def save_step_info(layout: ArchiveLayout, obsid: str, step: str, extra_info: dict[str, dict[str, Any]],
                   plan_errors: dict[str, str], configuration: Mapping[str, Any] | None = None) -> Path:
    """Note that ``step`` ran over ``obsid``, with its extra info, the units it could not plan
    and the arguments it was called with (DAXA's ``process_configurations``)."""
    data = _read_info(layout, obsid)
    data[step] = {
        "ran": datetime.now(timezone.utc).isoformat(),
        "extra_info": extra_info,
        "plan_errors": plan_errors,
        "configuration": dict(configuration or {}),
    }
    layout.obs_dir(obsid).mkdir(parents=True, exist_ok=True)
    return atomic_write_json(_info_path(layout, obsid), data)


def _stdout(record: StepRecord) -> str:
    for path in record.log_files:
        if str(path).endswith(".stdout.log"):
            try:
                text = Path(path).read_text(errors="replace")
            except OSError:
                return ""
            return f"== {record.step} [{record.unit}] ==\n{text}"
    return ""


def _stderr(record: StepRecord) -> str:
    """A failed call's whole stderr (DAXA's raw_process_errors), "" when none was kept."""
    for path in record.log_files:
        if str(path).endswith(".stderr.log"):
            try:
                return Path(path).read_text(errors="replace")
            except OSError:
                return ""
    return ""


def _note_extra(out: DaxaRecords, step: str, key: str, extra: dict[str, Any]) -> None:
    """Merge a unit's extra info into what the layout gave (one level deeper for a key's parts)."""
    have = out.extra_info[MISSION].setdefault(step, {}).setdefault(key, {})
    for name, value in extra.items():
        if isinstance(value, dict) and isinstance(have.get(name), dict):
            have[name] = {**have[name], **value}
        else:
            have[name] = value


def _derive_extra(layout: ArchiveLayout, out: DaxaRecords, rec: StepRecord) -> None:
    """DAXA's extra info of a call that ran (daxa_xmm.daxa.extra_info), whoever ran it."""
    from daxa_xmm.daxa.extra_info import daxa_extra_info

    key = daxa_key(rec.unit)
    _note_extra(out, daxa_function(rec.step), key, daxa_extra_info(layout, daxa_function(rec.step), key, rec.facts, rec.unit[len(key) + 1:] or None))


def _errors(record: StepRecord) -> list[str]:
    if record.status == "ok":
        return []
    if record.status == "data_quality":
        return [daxa_quality(record)]
    parsed = [daxa_error(SasRecord.from_dict(e)) for e in record.errors]
    return parsed or [record.message or f"{record.step}: {record.status}"]


def steps_run(layout: ArchiveLayout, obsid: str) -> set[str]:
    """The DAXA steps with a record for ``obsid`` (run by a step function or the flow)."""
    done = set(_read_info(layout, obsid))
    manifest = layout.manifest(obsid)
    if manifest.exists():
        done |= {daxa_function(r.step) for r in load_manifest(manifest, obsid).records.values() if r.status != "skipped"}
    return done


def read_records(layout: ArchiveLayout, obsids: list[str], *, logs: bool = False) -> DaxaRecords:
    """Every observation's records under DAXA's keys (see the module docstring).

    ``logs``: also read every call's stdout log, and the stderr of failed calls (only
    ``process_logs`` and ``raw_process_errors`` need them).
    """
    out = DaxaRecords()
    configured: dict[str, tuple[str, dict[str, Any]]] = {}  # step -> (latest call, its arguments)
    for obsid in obsids:
        info = _read_info(layout, obsid)
        for step, noted in info.items():
            if "configuration" in noted and (step not in configured or noted["ran"] > configured[step][0]):
                configured[step] = (noted["ran"], noted["configuration"])
        manifest = layout.manifest(obsid)
        records = load_manifest(manifest, obsid).records.values() if manifest.exists() else []
        unusable = {r.unit for r in records if r.status == "data_quality"}
        for rec in records:
            if rec.status == "skipped":  # not selected by a partial run, or after a data-quality outcome: never attempted
                continue
            if rec.status == "upstream_failed" and rec.unit in unusable:  # what an unusable product would feed
                continue
            warnings = [daxa_warning(SasRecord.from_dict(w)) for w in rec.warnings]
            out._put(daxa_function(rec.step), daxa_key(rec.unit), rec.status == "ok", _errors(rec), warnings, _stdout(rec) if logs else "")
            if rec.status != "upstream_failed":  # it ran (or was meant to): DAXA noted its products
                _derive_extra(layout, out, rec)
            if logs and rec.status != "ok":
                raw = out.raw_errors[MISSION].setdefault(daxa_function(rec.step), {})
                raw[daxa_key(rec.unit)] = raw.get(daxa_key(rec.unit), "") + _stderr(rec)
        for step, noted in info.items():
            for key, message in noted.get("plan_errors", {}).items():
                out._put(step, key, False, [message], [], "")
            for key, extra in noted.get("extra_info", {}).items():
                _note_extra(out, step, key, extra)
        merges = out.success[MISSION].get("merge_subexposures", {})
        if "merge_subexposures" in info or any(k.startswith(obsid) for k in merges):
            out.final[MISSION][obsid] = any(ok for k, ok in merges.items() if k.startswith(obsid))
    rank = {s: i for i, s in enumerate(DAXA_STEPS)}
    out.configurations[MISSION] = [{step: configured[step][1]} for step in sorted(configured, key=lambda s: rank.get(s, len(rank)))]
    out.in_step_order()
    return out


def check_prerequisite(layout: ArchiveLayout, obsids: list[str], step: str) -> None:
    """Raise MissingStepError when no observation has been through what ``step`` needs.

    Per unit, a failed prerequisite only skips that unit (the step function records it).
    """
    if step not in DAXA_STEPS:
        raise ConfigError(f"unknown step {step!r}; DAXA's steps are {', '.join(DAXA_STEPS)}")
    needs = DAXA_PREREQUISITES.get(step, ())
    if not needs:
        return
    done: set[str] = set()
    for obsid in obsids:
        done |= steps_run(layout, obsid)
        if done & set(needs):
            return
    raise MissingStepError(
        f"{step} needs {' or '.join(needs)} first, and no observation of this archive has been through it "
        f"(products folder {layout.out_root}); run {needs[0]}(archive) before {step}(archive)"
    )
