"""merge_subexposures: one event list per instrument, merged over its sub-exposures.

``merge set1=A set2=B outset=C`` merges two lists, so N lists take N-1 chained calls in
one working folder: ``merge_1.fits = A+B``, ``merge_2.fits = merge_1+C``, ..., the last
outset being the product. A single sub-exposure is not merged at all: its one call is a
placement (:attr:`~daxa_xmm.sas.calls.SasCall.placed_from`, :class:`MergePlan` says so with
``single_source``), which copies it to its destination atomically and is recorded as the
merge; the cleaned per-exposure list stays where it was, since later re-runs and users may
still read it.

Per instrument four streams are merged, as DAXA 0.3.7 does: the cleaned lists and espfilt's
all-good lists (``-allevc``, into ``background/``), and for PN also the out-of-time ones.
merge refuses an existing outset (DAXA names each link anew for that reason; SAS's DAL
overwrites unless SAS_CLOBBER=0): every link's outset is a ``create`` output, which the
runner removes before the call, so a retried link never meets its own partial output.
"""

from __future__ import annotations

__all__ = ["STAGE", "MergePlan", "merge_calls", "merge_streams"]

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.odf.models import EPIC
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import work_dir
from daxa_xmm.steps.spec import DaxaFunction, Stage, StageInput, on_instruments


@dataclass(frozen=True)
class MergePlan:
    """How one instrument's list is made.

    Attributes:
        calls: chained merge calls, or the one placement of a single source.
        single_source: the only sub-exposure list, copied (not merged), else None.
        dest: the merged list's final path.
    """

    calls: tuple[SasCall, ...]
    single_source: Path | None
    dest: Path


def merge_streams(
    layout: ArchiveLayout, obsid: str, inst: str, exp_ids: Sequence[str], *, oot_allevc: bool = True
) -> list[tuple[str, list[Path]]]:
    """``(kind, sources)`` of every list merged for one instrument; the merged list of a kind
    is ``layout.merged_events(obsid, inst, kind)``.

    Args:
        oot_allevc: whether espfilt wrote PN's out-of-time all-good lists (SAS >= 20).
    """
    streams = [
        ("clean", [layout.clean_events(obsid, inst, e) for e in exp_ids]),
        ("allevc", [layout.espfilt_allevc(obsid, inst, e) for e in exp_ids]),
    ]
    if inst == "PN":
        streams.insert(1, ("clean_oot", [layout.clean_events(obsid, inst, e, oot=True) for e in exp_ids]))
        if oot_allevc:
            streams.append(("allevcoot", [layout.espfilt_allevc(obsid, inst, e, oot=True) for e in exp_ids]))
    return streams


def merge_calls(
    layout: ArchiveLayout,
    obsid: str,
    unit_label: str,
    sources: Sequence[Path],
    dest: Path,
    timeout_s: float | None = None,
) -> MergePlan:
    """Plan the merge of ``sources`` into ``dest``.

    Args:
        layout: the archive layout.
        obsid: the ObsID.
        unit_label: e.g. ``0201903501PN-clean``; names the working folder.
        sources: the sub-exposure lists, in order.
        dest: the final merged list.
        timeout_s: wall-clock limit per call.

    Raises:
        ConfigError: when there is nothing to merge.
    """
    check_obsid(obsid)
    if not sources:
        raise ConfigError(f"{unit_label}: no event lists to merge")
    cwd = work_dir(layout, obsid, unit_label, "merge")
    if len(sources) == 1:
        single = Path(sources[0])
        placement = SasCall(step="merge_subexposures", obsid=obsid, unit=unit_label, argv=(), cwd=cwd,
                            outputs=(OutputSpec(Path(dest).name, Path(dest), check="events"),), timeout_s=timeout_s,
                            clean_cwd=False, extra={"sources": [str(single)]}, placed_from=single)
        return MergePlan(calls=(placement,), single_source=single, dest=Path(dest))
    calls = []
    current: Path | str = sources[0]
    n = len(sources) - 1
    for i, nxt in enumerate(sources[1:], start=1):
        last = i == n
        out = Path(dest).name if last else f"merge_{i}.fits"
        calls.append(
            SasCall(
                # one manifest key per link: the last link is the step's product
                step="merge_subexposures" if last else f"merge_subexposures_{i}",
                obsid=obsid,
                unit=unit_label,
                argv=("merge", param("set1", current), param("set2", nxt), param("outset", out)),
                cwd=cwd,
                env={"SAS_CCF": str(layout.ccf(obsid))},
                outputs=(OutputSpec(out, Path(dest) if last else None, check="events"),),
                timeout_s=timeout_s,
                clean_cwd=i == 1,
                reads_cwd_of=None if i == 1 else f"merge_subexposures_{i - 1}",
                extra={"sources": [str(s) for s in sources], "link": i, "of": n},
            )
        )
        current = out
    return MergePlan(calls=tuple(calls), single_source=None, dest=Path(dest))


def _build(si: StageInput) -> list[SasCall]:
    """The instrument's merged lists (cleaned, all-good, PN's out-of-time ones)."""
    inst, work = si.the_inst, list[SasCall]()
    streams = merge_streams(si.layout, si.obsid, inst, [u.exp_id for u in si.units], oot_allevc=si.sas_version >= (20, 0, 0))
    for kind, sources in streams:
        label = f"{si.obsid}{inst}-{kind}"
        plan = merge_calls(si.layout, si.obsid, label, sources, si.layout.merged_events(si.obsid, inst, kind), si.timeout_s)
        work += plan.calls
    return work


STAGE = Stage("merge_subexposures", "instrument", _build, on_instruments(*EPIC), typical_s=0.8, sas_tasks=("merge",),
              daxa=(DaxaFunction("merge_subexposures", needs=("cleaned_evt_lists",)),))
