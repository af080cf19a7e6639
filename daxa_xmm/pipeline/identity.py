"""Identity tokens: what a product "is", so that whatever reads it re-runs when it changes.

A call's fingerprint folds in the tokens of every product it reads
(:func:`with_upstream`), so a re-made event list re-makes the cleaned list, the merge and
the images even though their argv did not change. The archive flow and the DAXA step
functions both take tokens from here, which is what lets either one skip the other's work.
"""

from __future__ import annotations

__all__ = ["calibration_identity", "record_token", "with_upstream", "SUPERSEDED_MESSAGE", "mark_superseded"]

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from daxa_xmm.pipeline.manifest import Manifest, StepRecord
from daxa_xmm.sas.calindex import listed_ccfs
from daxa_xmm.sas.calls import SasCall


def calibration_identity(ccf_cif: Path) -> str | None:
    """A hash of the calibration set a ccf.cif lists (scope, type, issue); None if unreadable.

    What cifbuild's dependants read is that set, not the run: re-running cifbuild (a new
    analysis date, a scheduled refresh) re-runs everything downstream only when the set
    actually changed.
    """
    try:
        entries = sorted({(scope, typeid, issue) for scope, typeid, issue, _ in listed_ccfs(ccf_cif)})
    except OSError:
        return None
    return "calindex:" + hashlib.sha256(repr(entries).encode()).hexdigest()[:16]


def record_token(record: StepRecord | None) -> str:
    """The identity of what ``record``'s call made: cifbuild's calibration set, else the
    call's fingerprint and when it ended.

    A forced re-run with unchanged parameters still changes the token (new end time), so
    what depends on it re-runs too.
    """
    if record is None:
        return ""
    if record.identity:  # remade after the storage policy removed it: what it was
        return record.identity
    if record.step == "cif_build" and record.products:
        identity = calibration_identity(record.products[0])
        if identity is not None:
            return identity
    ended = record.ended.isoformat() if record.ended is not None else ""
    return f"{record.fingerprint}@{ended}"


def with_upstream(call: SasCall, tokens: Iterable[str]) -> SasCall:
    """``call`` with the identity of the products it reads folded into its fingerprint."""
    tokens = sorted(set(tokens))
    if not tokens:
        return call
    return dataclasses.replace(call, extra={**call.extra, "upstream": tokens})


#: Why a product whose inputs were remade since is no longer trusted, for the manifest and the report.
SUPERSEDED_MESSAGE = ("stale: made from products that were remade since (by another run, or with other settings); "
                      "run its step (or the whole pipeline) with the settings you want to remake it")


def mark_superseded(manifest: Manifest) -> list[str]:
    """Mark ``stale`` every ``ok`` record made from a product that is no longer the one it read.

    A record's ``upstream`` holds the tokens of what its call read. Once one of those is
    remade (its token changes) or stops being ``ok``, what was made from it no longer
    matches it, whichever run remade it and whatever settings it used: two runs on one
    products folder with different energy bands, for instance, leave the first run's images
    made from cleaned lists the second run replaced. Those are kept (for the user to see)
    but never reported ``ok``; the check is transitive, so what was made from a stale
    product is stale too. Records of older versions (no ``upstream``) are left as they are.

    Returns the keys marked, in the order they were found.
    """
    valid = {record_token(r) for r in manifest.records.values() if r.status == "ok"}
    marked: list[str] = []
    found = True
    while found:
        found = False
        for rec in list(manifest.records.values()):
            if rec.status != "ok" or not rec.upstream or valid.issuperset(rec.upstream):
                continue
            valid.discard(record_token(rec))
            manifest.put(rec.model_copy(update={"status": "stale", "message": SUPERSEDED_MESSAGE}))
            marked.append(rec.key)
            found = True
    return marked
