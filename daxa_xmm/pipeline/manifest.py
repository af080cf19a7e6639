"""The per-observation manifest: what ran, how, with what result; what a re-run may skip.

One ``manifest.json`` per ObsID, rewritten atomically after every change, holds a
:class:`StepRecord` per unit and step: status, the exact argv, SAS version, the call's
fingerprint (a hash of argv, environment, outputs, upstream fingerprints and SAS version),
times, exit status, parsed SAS errors and warnings, log files and product paths. A re-run
skips a call only when its last record is ``ok`` (or a data-quality outcome) with the same
fingerprint and every output still exists (:func:`is_up_to_date`); anything failed is run
again (DAXA never retried).

A corrupt manifest never stops processing: it is kept aside as
``manifest.json.corrupt-<time>`` and the observation starts from an empty record.
"""

from __future__ import annotations

__all__ = [
    "StepStatus",
    "StepRecord",
    "Manifest",
    "record_key",
    "call_facts",
    "call_fingerprint",
    "missing_leftovers",
    "load_manifest",
    "read_manifest",
    "save_manifest",
    "record_result",
    "mark",
    "mark_stale",
    "is_up_to_date",
]

import dataclasses
import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daxa_xmm.atomic import atomic_write_json
from daxa_xmm.sas.calls import SasCall, SasResult
from daxa_xmm.sas.product_checks import looks_intact

log = logging.getLogger(__name__)

#: ``data_quality``: SAS did its work and a product holds nothing usable (daxa_xmm.sas.quality):
#: not a failure; what it feeds is recorded ``skipped``, and a re-run with the same inputs and
#: thresholds reuses the outcome (it is deterministic) instead of redoing it.
StepStatus = Literal["ok", "stale", "failed", "timeout", "interrupted", "skipped", "upstream_failed", "running",
                     "data_quality"]

#: Bumped when a change would make older manifests mean something else.
SCHEMA_VERSION = 1


def _utc(ts: float | None = None) -> datetime:
    return datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc)


def record_key(unit: str, step: str) -> str:
    """The manifest key of one call: ``"<unit>/<step>"``, e.g. ``0201903501PNS003/espfilt``."""
    return f"{unit}/{step}"


class StepRecord(BaseModel):
    """Everything known about the last run (or non-run) of one step for one unit.

    Unknown fields are kept (``extra="allow"``) so that an older daxa-xmm rewriting a newer
    manifest does not drop what it does not understand.
    """

    model_config = ConfigDict(extra="allow")

    step: str = Field(description="Pipeline step, e.g. 'espfilt'.")
    unit: str = Field(description="Unit label, e.g. '0201903501PNS003'.")
    status: StepStatus = Field(description="Outcome; 'running' while in progress.")
    argv: list[str] = Field(default_factory=list, description="The exact argv; argv[0] is the SAS task.")
    cwd: Path | None = Field(default=None, description="Working directory the task ran in.")
    sas_version: str = Field(default="", description="SAS version string the call ran under.")
    fingerprint: str = Field(default="", description="SasCall.fingerprint(sas_version).")
    ccf: Path | None = Field(default=None, description="SAS_CCF of the call: the calibration index used.")
    started: datetime | None = None
    ended: datetime | None = None
    duration_s: float | None = Field(default=None, description="Wall-clock seconds.")
    exit_code: int | None = Field(default=None, description="Exit status; negative for a signal; None if it never ran.")
    errors: list[dict[str, str]] = Field(default_factory=list, description="Parsed '** task: error' records.")
    warnings: list[dict[str, str]] = Field(default_factory=list, description="Parsed '** task: warning' records.")
    message: str = Field(default="", description="Why it failed or was skipped, for humans.")
    log_files: list[Path] = Field(default_factory=list, description="stdout and stderr logs.")
    products: list[Path] = Field(default_factory=list, description="Final product paths (empty unless ok).")
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description="What the call was about (exposure, band, CCDs...) and what it found out (cifbuild's analysis date).")
    modified: list[Path] = Field(
        default_factory=list, description="Files the call changed where they lie (e.g. emanom's keywords in the emchain list).")
    leftovers: list[str] | None = Field(
        default=None, description="Files left in the cwd for the next call of the chain; None in records of older versions.")
    attempts: int = Field(default=0, description="How many runs this outcome took (retries included).")
    upstream: list[str] | None = Field(
        default=None, description="Identity tokens of the products the call read (daxa_xmm.pipeline.identity); None in records of older versions.")
    removed: list[Path] = Field(
        default_factory=list, description="Products removed by the storage policy (--storage); the record stays ok.")
    identity: str | None = Field(
        default=None, description="The identity token of a product remade after the storage policy removed it: "
        "the one it had, so what was made from it stays valid.")
    quality: list[str] = Field(
        default_factory=list,
        description="The data-quality checks its products failed (status data_quality): flare_gti, cleaned_events, image, "
                    "exposure_map.")

    @property
    def key(self) -> str:
        """The manifest key, ``"<unit>/<step>"``."""
        return record_key(self.unit, self.step)


class Manifest(BaseModel):
    """All step records of one observation, keyed ``"<unit>/<step>"``."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    obsid: str
    records: dict[str, StepRecord] = Field(default_factory=dict)
    updated: datetime | None = None
    folder: str | None = Field(
        default=None, description="The observation's products folder when last saved: where the records' paths point.")
    origin: str | None = Field(
        default=None, description="The observation's products folder when the manifest was first saved: fingerprints "
                                  "are of each call as if it ran there, so a moved or copied products folder stays up to date.")

    def get(self, unit: str, step: str) -> StepRecord | None:
        """The record of ``step`` for ``unit``, or None if it never ran."""
        return self.records.get(record_key(unit, step))

    def put(self, record: StepRecord) -> StepRecord:
        """Store ``record`` (replacing the previous one) and stamp the update time."""
        self.records[record.key] = record
        self.updated = _utc()
        return record


# --------------------------------------------------------------------------- files
def _keep_corrupt(path: Path, why: str) -> None:
    stamp = _utc().strftime("%Y%m%dT%H%M%S%fZ")
    copy = path.with_name(f"{path.name}.corrupt-{stamp}")
    shutil.copy2(path, copy)
    log.warning("manifest %s is unusable (%s); kept it as %s and starting from an empty manifest",
                path, why, copy.name)


def read_manifest(path: Path, obsid: str) -> tuple[Manifest, bool]:
    """The manifest at ``path`` and whether the file there was unusable (and set aside)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Manifest(obsid=obsid), False
    try:
        manifest = Manifest.model_validate(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        _keep_corrupt(path, f"{type(exc).__name__}: {first}")
        return Manifest(obsid=obsid), True
    if manifest.obsid != obsid:
        _keep_corrupt(path, f"it belongs to ObsID {manifest.obsid}, not {obsid}")
        return Manifest(obsid=obsid), True
    return _placed(manifest, path), False


def _folder_of(path: Path) -> str:
    """The observation folder a manifest at ``path`` describes, as the layout names it
    (absolute, symlinks kept: the records' paths are made so)."""
    return os.path.abspath(path.parent)


def _placed(manifest: Manifest, path: Path) -> Manifest:
    """``manifest`` with its records' paths in the folder it now lies in.

    Users move and copy products folders between disks (``mv``, ``cp -a``). Every path a
    record holds lies in the observation's folder, so a manifest found elsewhere than it was
    saved has its paths moved with it; fingerprints stay those of :attr:`Manifest.origin`
    (:func:`call_fingerprint`), so nothing is redone for having moved. A manifest of an older
    version (no ``folder``) is taken as made where it lies.
    """
    here = _folder_of(path)
    if manifest.folder is not None and manifest.folder != here:
        log.info("%s: products folder moved from %s to %s; its records follow it", manifest.obsid, manifest.folder, here)
        for key, rec in list(manifest.records.items()):
            manifest.records[key] = _record_moved(rec, manifest.folder, here)
    manifest.folder = here
    if manifest.origin is None:
        manifest.origin = here
    return manifest


def _moved_text(text: str, old: str, new: str) -> str:
    """``text`` with the folder ``old`` (as itself or a path's start, anywhere in it) read as ``new``."""
    if text == old:
        return new
    return text.replace(old + os.sep, new + os.sep)


def _moved_path(path: Path | None, old: str, new: str) -> Path | None:
    return None if path is None else Path(_moved_text(str(path), old, new))


def _record_moved(rec: StepRecord, old: str, new: str) -> StepRecord:
    """``rec`` with every path in it (argv, cwd, calibration index, logs, products, facts) moved from ``old`` to ``new``."""
    return rec.model_copy(update={
        "argv": [_moved_text(a, old, new) for a in rec.argv],
        "cwd": _moved_path(rec.cwd, old, new),
        "ccf": _moved_path(rec.ccf, old, new),
        "log_files": [Path(_moved_text(str(p), old, new)) for p in rec.log_files],
        "products": [Path(_moved_text(str(p), old, new)) for p in rec.products],
        "modified": [Path(_moved_text(str(p), old, new)) for p in rec.modified],
        "removed": [Path(_moved_text(str(p), old, new)) for p in rec.removed],
        "facts": {k: _moved_text(v, old, new) if isinstance(v, str) else v for k, v in rec.facts.items()},
    })


def call_fingerprint(manifest: Manifest, call: SasCall, sas_version: str) -> str:
    """``call``'s fingerprint as the manifest keeps it: of the call as if made in the
    observation's first folder (:attr:`Manifest.origin`), wherever that folder lies now."""
    old, here = manifest.origin, manifest.folder
    if old is None or here is None or old == here:
        return call.fingerprint(sas_version)
    moved = dataclasses.replace(
        call,
        argv=tuple(_moved_text(a, here, old) for a in call.argv),
        env={k: _moved_text(v, here, old) for k, v in call.env.items()},
        outputs=tuple(dataclasses.replace(o, name=_moved_text(o.name, here, old), dest=_moved_path(o.dest, here, old))
                      for o in call.outputs),
        placed_from=_moved_path(call.placed_from, here, old),
    )
    return moved.fingerprint(sas_version)


def load_manifest(path: str | os.PathLike[str], obsid: str) -> Manifest:
    """Read an observation's manifest; never fails on a missing or corrupt file.

    Args:
        path: the manifest file.
        obsid: the observation it must belong to.

    Returns:
        The manifest; an empty one when the file is missing, and also when it is not valid
        JSON, does not match the schema, or belongs to another ObsID. In those last cases
        the file is first copied to ``<name>.corrupt-<UTC time>`` and a warning is logged.

    Raises:
        OSError: the file exists but cannot be read (permissions): a state to fix, not to
            paper over by reprocessing.
    """
    return read_manifest(Path(path), obsid)[0]


def save_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> Path:
    """Write ``manifest`` atomically: readers see the previous version or this one."""
    if manifest.folder is None:  # a new manifest: made where it is saved
        manifest.folder = _folder_of(Path(path))
    if manifest.origin is None:
        manifest.origin = manifest.folder
    return atomic_write_json(path, manifest.model_dump(mode="json"))


# --------------------------------------------------------------------------- records
def call_facts(call: SasCall) -> dict[str, Any]:
    """The call's JSON-ready facts for its record: its ``extra`` without the upstream tokens."""
    return {k: v for k, v in call.extra.items() if k != "upstream"}


def _upstream(call: SasCall) -> list[str]:
    """The identity tokens of what ``call`` read, as its fingerprint folds them in."""
    return sorted(call.extra.get("upstream", ()))


def record_result(
    manifest: Manifest, result: SasResult, sas_version: str, attempts: int = 1, facts: dict[str, Any] | None = None
) -> StepRecord:
    """Record the outcome of a run in ``manifest`` (in memory) and return the record.

    Args:
        manifest: the observation's manifest; changed in place.
        result: what :func:`daxa_xmm.sas.runner.run_sas` returned.
        sas_version: the SAS version string the call ran under; part of the fingerprint.
        attempts: how many runs it took (1 plus retries).
        facts: JSON-ready facts; the call's ``extra`` (less its upstream tokens) by default.
    """
    call = result.call
    if facts is None:
        facts = call_facts(call)
    return manifest.put(StepRecord(
        step=call.step,
        unit=call.unit,
        status=result.status,
        argv=list(call.argv),
        cwd=Path(call.cwd),
        sas_version=sas_version,
        fingerprint=call_fingerprint(manifest, call, sas_version),
        ccf=call.env.get("SAS_CCF"),
        started=_utc(result.started),
        ended=_utc(result.ended),
        duration_s=round(result.duration_s, 3),
        exit_code=result.exit_code,
        errors=[r.to_dict() for r in result.errors],
        warnings=[r.to_dict() for r in result.warnings],
        message=result.message,
        log_files=[p for p in (result.stdout_log, result.stderr_log) if p is not None],
        products=list(result.products),
        facts=facts,
        modified=list(result.modified),
        leftovers=list(result.leftovers) if result.ok else None,
        attempts=attempts,
        upstream=_upstream(call),
        quality=list(result.quality),
    ))


def mark(
    manifest: Manifest, call: SasCall, status: StepStatus, message: str = "", *, sas_version: str = ""
) -> StepRecord:
    """Record a call that did not run (or is running): ``skipped``, ``upstream_failed``, ``running``.

    ``skipped`` means not applicable (emanom on SAS < 19, a unit with nothing to do). A call
    skipped because it is up to date must NOT be marked: its ``ok`` record is what lets the
    next run skip it again.

    Args:
        manifest: changed in place.
        call: the call concerned.
        status: the status to record.
        message: why, for the report (e.g. ``"epchain [0201903501PNS003] failed"``).
        sas_version: recorded and hashed into the fingerprint when known.
    """
    return manifest.put(StepRecord(
        step=call.step,
        unit=call.unit,
        status=status,
        argv=list(call.argv),
        cwd=Path(call.cwd),
        sas_version=sas_version,
        fingerprint=call_fingerprint(manifest, call, sas_version),
        ccf=call.env.get("SAS_CCF"),
        started=_utc() if status == "running" else None,
        message=message,
        upstream=_upstream(call),
    ))


def mark_stale(manifest: Manifest, call: SasCall, message: str) -> StepRecord | None:
    """A call left out of a partial run (``--steps``) whose products were made from inputs
    that have changed since: its record says ``stale`` (products kept, for the user to see)
    instead of ``ok``. Returns None when it has no such record (it never made anything).
    """
    rec = manifest.get(call.unit, call.step)
    if rec is None or rec.status not in ("ok", "stale"):
        return None
    return manifest.put(rec.model_copy(update={"status": "stale", "message": message}))


def is_up_to_date(manifest: Manifest, call: SasCall, sas_version: str) -> bool:
    """True when ``call`` need not run again.

    That is: its last record is ``ok`` (or ``data_quality``: the same inputs would make the
    same unusable product again), was made with the same fingerprint (same argv,
    environment, outputs, upstream fingerprints and SAS version), and every product still
    exists at its destination and still looks intact (:func:`~daxa_xmm.sas.product_checks.looks_intact`:
    a whole FITS file, a summary that parses). Files left in the working folder are not asked for: they
    matter only when a later call that reads them must run (:func:`missing_leftovers`),
    so a run whose scratch was cleaned afterwards stays free to re-run.
    """
    rec = manifest.get(call.unit, call.step)
    if rec is None or rec.status not in ("ok", "data_quality") or rec.fingerprint != call_fingerprint(manifest, call, sas_version):
        return False
    # a product truncated or emptied since (a full disk, a crash) is redone, not trusted; one
    # the storage policy removed is remade only when a call that reads it must run
    removed = {str(p) for p in rec.removed}
    if not all(looks_intact(o.dest, o.check) for o in call.outputs if o.dest is not None and str(o.dest) not in removed):
        return False
    return all(Path(p).exists() for p in rec.products if str(p) not in removed)


def missing_leftovers(manifest: Manifest, call: SasCall) -> list[str]:
    """Files that ``call`` reads from an earlier call's working folder and that are gone.

    ``call.reads_cwd_of`` names the earlier step (the OOT epchain run for the normal one,
    rgsproc's previous stage, the previous merge link). What that step left in the cwd is
    in its record; a record without that list (older versions) asks only for a non-empty
    folder. Returns ``[]`` when nothing is missing or the call reads no earlier cwd.
    """
    if call.reads_cwd_of is None:
        return []
    cwd = Path(call.cwd)
    rec = manifest.get(call.unit, call.reads_cwd_of)
    if rec is None or rec.status != "ok":
        return [f"<output of {call.reads_cwd_of}>"]
    if rec.leftovers is None:
        return [] if cwd.is_dir() and any(cwd.iterdir()) else [f"{cwd}/*"]
    return [name for name in rec.leftovers if not (cwd / name).exists()]
