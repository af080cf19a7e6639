"""A head start: a local run's observations start while Prefect's server starts.

A command-line run without ``PREFECT_API_URL`` starts a temporary Prefect server first, which
takes 5-25 s (BENCHMARKS.md section 6). Nothing needs Prefect to run an observation: the
core runs it (:func:`daxa_xmm.pipeline.observation_run.run_observation`, each call skipped when up to
date, run under the machine's SAS slots, recorded, tried again on a transient failure as the
flow's tasks are). So while the server starts, :class:`HeadStart` runs whole observations,
in the archive's order, as many at once as the flow would (``obs_concurrency``).

When the archive flow begins it closes the head start: no new observation is taken, and
those under way run to their end. Each of them is then the flow's to report, with the
outcome the head start left (:func:`wait_for`); the others get their subflow. An
observation the head start could not run to an outcome (an unreadable ODF) gets its subflow
too, which meets the same problem and reports it.

Why whole observations and not only their first calls: with calls of a few seconds, an
observation's chains waiting for the server cost a third of the run (BENCHMARKS.md section
7). The temporary server's UI ends with the command, so nothing is hidden from a user who
could have watched it. Only for the thread task runner: the subflows run in this process.
"""

from __future__ import annotations

__all__ = ["HeadStart", "wait_for", "close_all", "taken"]

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.locks import observation_lock
from daxa_xmm.pipeline.observation_run import QUIET, Driver, ObservationOutcome, Watch, retrying_calls, run_observation
from daxa_xmm.pipeline.step_run import CallOutcome, ObsContext
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import SasCall

log = logging.getLogger(__name__)


@dataclasses.dataclass
class _Taken:
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outcome: ObservationOutcome | None = None


_taken: dict[tuple[str, str], _Taken] = {}
_lock = threading.Lock()
_running: list[HeadStart] = []


def _key(layout: ArchiveLayout, obsid: str) -> tuple[str, str]:
    return (str(layout.out_root), obsid)


def close_all() -> None:
    """The archive flow has begun: every head start of this process takes no new observation."""
    with _lock:
        for head in _running:
            head.close()


def taken(layout: ArchiveLayout) -> set[str]:
    """The observations of ``layout`` a head start of this process took (final once closed)."""
    with _lock:
        return {obsid for (root, obsid) in _taken if root == str(layout.out_root)}


def wait_for(layout: ArchiveLayout, obsid: str) -> ObservationOutcome | None:
    """Block until a head start of this process is done with ``obsid``; its outcome, or None
    when none took it or it ended without one (the subflow then runs the observation)."""
    with _lock:
        entry = _taken.get(_key(layout, obsid))
    if entry is None:
        return None
    entry.done.wait()
    return entry.outcome


class HeadStart:
    """Runs whole observations of ``obsids``, in order, until :meth:`close`.

    Args:
        layout, config: the run's.
        obsids: the observations that have work (the plan-first check's complement).
        context: the ObsContext the flow would give each observation (same slots, same env).
        watch: told as observations and calls start and end (the progress bars).
    """

    def __init__(self, layout: ArchiveLayout, config: ProcessingConfig, obsids: Sequence[str],
                 context: Callable[[str], ObsContext], watch: Watch = QUIET) -> None:
        self.layout, self.config, self.context = layout, config, context
        self._todo = list(obsids)
        self._closed, self._abandoned = threading.Event(), threading.Event()
        calls = retrying_calls(config)

        async def run_call(call: SasCall, ctx: ObsContext) -> CallOutcome:
            if self._abandoned.is_set():
                raise interrupt.Interrupted(f"{call.step} [{call.unit}]: not started, the run could not go on")
            return await calls(call, ctx)

        self.driver = Driver(run_call, watch)
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(config.observations_at_once(), len(self._todo) or 1)),
                                        thread_name_prefix="head-start")
        self.started: list[str] = []

    def start(self) -> HeadStart:
        with _lock:
            _running.append(self)
        for obsid in self._todo:
            self._pool.submit(self._one, obsid)
        return self

    def close(self) -> None:
        """No observation is taken after this; those under way run to their end."""
        self._closed.set()

    def abandon(self) -> None:
        """The run cannot go on (Prefect did not start): close, and start no new call; the
        calls under way finish and the rest is recorded as interrupted (a re-run resumes)."""
        self._abandoned.set()
        self.close()

    def join(self) -> None:
        """Close, wait for the observations under way, and forget them."""
        self.close()
        self._pool.shutdown(wait=True)
        with _lock:
            if self in _running:
                _running.remove(self)
            for obsid in self.started:
                _taken.pop(_key(self.layout, obsid), None)

    def _one(self, obsid: str) -> None:
        entry = _Taken()
        with _lock:
            if self._closed.is_set() or interrupt.stop_requested():
                return
            _taken[_key(self.layout, obsid)] = entry
            self.started.append(obsid)
        try:
            with observation_lock(self.layout.obs_dir(obsid)):
                entry.outcome = asyncio.run(run_observation(obsid, self.config, self.context(obsid), self.driver))
        except Exception as exc:  # noqa: BLE001 - the subflow meets the same problem and reports it
            log.debug("%s: head start stopped: %s", obsid, exc)
        finally:
            entry.done.set()
