"""Identity tokens: what a product "is", so that whatever reads it re-runs when it changes.

A call's fingerprint folds in the tokens of every product it reads
(:func:`with_upstream`), so a re-made event list re-makes the cleaned list, the merge and
the images even though their argv did not change. The archive flow and the DAXA step
functions both take tokens from here, which is what lets either one skip the other's work.
"""

from __future__ import annotations

__all__ = ["calibration_identity", "record_token", "with_upstream"]

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from daxa_xmm.calls import SasCall
from daxa_xmm.ccf import listed_ccfs
from daxa_xmm.manifest import StepRecord


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
