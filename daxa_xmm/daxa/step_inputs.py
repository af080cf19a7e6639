"""What one DAXA step function's unit reads: whether its prerequisite succeeded, and the
identity tokens of everything before it in the archive flow's chain.

The archive flow carries tokens along each unit's chain as it runs
(flows.process_observation). A step function runs one step at a time, so it takes the same
tokens from the manifest records of the calls that came before: with the same tokens the
calls get the same fingerprints, so the flow skips what the step functions made and the
step functions skip what the flow made.
"""

from __future__ import annotations

__all__ = ["UnitInputs", "cleaned_units", "unit_inputs", "merge_inputs", "band_inputs", "head_inputs"]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.pipeline.identity import record_token
from daxa_xmm.pipeline.manifest import Manifest, StepRecord
from daxa_xmm.pipeline.stages import DAXA_PREREQUISITES, daxa_function


@dataclass(frozen=True)
class UnitInputs:
    """``ready``: the prerequisite succeeded (else ``why`` says what failed); ``tokens``:
    the identity of what the unit's calls read."""

    ready: bool
    tokens: tuple[str, ...] = ()
    why: str = ""


def _ok(records: Iterable[StepRecord | None]) -> list[StepRecord]:
    return [r for r in records if r is not None and r.status == "ok"]


def _tokens(records: Iterable[StepRecord]) -> tuple[str, ...]:
    return tuple(record_token(r) for r in records)


def _head(manifest: Manifest, obsid: str) -> list[StepRecord | None]:
    return [manifest.get(obsid, "cif_build"), manifest.get(obsid, "odf_ingest")]


def head_inputs(manifest: Manifest, obsid: str, step: str) -> UnitInputs:
    """cif_build reads nothing of ours; odf_ingest reads cifbuild's calibration index."""
    if step == "cif_build":
        return UnitInputs(True)
    cif = manifest.get(obsid, "cif_build")
    if cif is None or cif.status != "ok":
        return UnitInputs(False, why=f"{obsid}: cif_build did not succeed")
    return UnitInputs(True, _tokens([cif]))


def unit_inputs(manifest: Manifest, unit: Unit, step: str, chain: Sequence[str]) -> UnitInputs:
    """A chain step of one sub-exposure: the head and every earlier step of its chain.

    Ready when every record of the step it needs (DAXA_PREREQUISITES) is ok; an earlier step a
    DAXA user may leave out (emanom) adds its token only when it ran.
    """
    first = next(i for i, s in enumerate(chain) if daxa_function(s) == step)
    keys = [(unit.obsid, "cif_build"), (unit.obsid, "odf_ingest")] + [(unit.label, s) for s in chain[:first]]
    before = [manifest.get(label, s) for label, s in keys]
    needs = DAXA_PREREQUISITES[step]
    needed = [(daxa_function(s), r) for (_, s), r in zip(keys, before, strict=True) if daxa_function(s) in needs]
    failed = list(dict.fromkeys(s for s, r in needed if r is None or r.status != "ok"))
    if failed or not needed:
        return UnitInputs(False, why=f"{unit.label}: {' and '.join(failed) or ' or '.join(needs)} did not succeed")
    return UnitInputs(True, _tokens(_ok(before)))


def cleaned_units(manifest: Manifest, units: Sequence[Unit]) -> list[Unit]:
    """The sub-exposures whose cleaned event lists were made (what a merge may read)."""
    return [u for u in units if _cleaned(manifest, u)]


def _cleaned(manifest: Manifest, unit: Unit) -> bool:
    records = [r for r in manifest.records.values() if r.unit == unit.label and daxa_function(r.step) == "cleaned_evt_lists"]
    return bool(records) and all(r.status == "ok" for r in records)


def _units_records(manifest: Manifest, units: Sequence[Unit]) -> list[StepRecord]:
    labels = {u.label for u in units}
    return [r for r in manifest.records.values() if r.unit in labels]


def merge_inputs(manifest: Manifest, obsid: str, inst: str, units: Sequence[Unit]) -> UnitInputs:
    """An instrument's merges read every call of the sub-exposures they merge, and the head."""
    good = cleaned_units(manifest, [u for u in units if u.inst == inst])
    if not good:
        return UnitInputs(False, why=f"{obsid}{inst}: no cleaned event list to merge (cleaned_evt_lists did not succeed)")
    return UnitInputs(True, _tokens(_ok([*_head(manifest, obsid), *_units_records(manifest, good)])))


def band_inputs(manifest: Manifest, layout: ArchiveLayout, obsid: str, inst: str, units: Sequence[Unit]) -> UnitInputs:
    """An instrument's band products read its merged lists (and all they were made of)."""
    merged = layout.merged_events(obsid, inst, "clean")
    if not merged.exists():
        return UnitInputs(False, why=f"{obsid}{inst}: no merged event list (merge_subexposures did not succeed)")
    base = merge_inputs(manifest, obsid, inst, units)
    merges = _ok(r for r in manifest.records.values()
                 if r.unit.startswith(f"{obsid}{inst}-") and daxa_function(r.step) == "merge_subexposures")
    return UnitInputs(True, base.tokens + _tokens(merges))
