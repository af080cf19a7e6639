"""A head start: the first SAS calls of a local run start while Prefect's server starts.

A command-line run without ``PREFECT_API_URL`` starts a temporary Prefect server first, which
takes 5-17 s (BENCHMARKS.md section 6). Nothing needs Prefect to run an observation's first
stages (cifbuild, odfingest: the table's ``observation`` scope): the core runs a call, skips
it when up to date and records it on its own (:func:`daxa_xmm.step_run.run_call_blocking`).
So while the server starts, :class:`HeadStart` runs them for the observations that have work,
at most ``num_cores`` at once under the same SAS slots. When the archive flow begins it
closes the head start (no new observation is taken), and each observation's subflow first
waits until the head start is done with it; its own calls then find that work up to date (or
redo a call that failed, recording it as the flow records everything).

Only for the thread task runner: the subflows run in this process, where they can wait.
"""

from __future__ import annotations

__all__ = ["HeadStart", "wait_for", "close_all"]

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from daxa_xmm import interrupt
from daxa_xmm.config import ProcessingConfig
from daxa_xmm.identity import with_upstream
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.locks import observation_lock
from daxa_xmm.odf_input import unpack_odf
from daxa_xmm.pipeline import observation_input
from daxa_xmm.sasversion import parse_sas_version
from daxa_xmm.stages import call_priorities, calls_only, stages_for
from daxa_xmm.step_run import ObsContext, run_call_blocking
from daxa_xmm.summary import read_observation_record

log = logging.getLogger(__name__)

_active: dict[tuple[str, str], threading.Event] = {}
_active_lock = threading.Lock()
_running: list[HeadStart] = []


def _key(layout: ArchiveLayout, obsid: str) -> tuple[str, str]:
    return (str(layout.out_root), obsid)


def close_all() -> None:
    """The archive flow has begun: every head start of this process takes no new observation."""
    with _active_lock:
        for head in _running:
            head.close()


def wait_for(layout: ArchiveLayout, obsid: str) -> None:
    """Block until a head start of this process is done with ``obsid`` (at once if none took it)."""
    with _active_lock:
        done = _active.get(_key(layout, obsid))
    if done is not None:
        done.wait()


class HeadStart:
    """Runs the ``observation`` stages of ``obsids``, in order, until :meth:`close`.

    Args:
        layout, config, sas_version: the run's.
        obsids: the observations that have work (the plan-first check's complement).
        context: the ObsContext the flow would give each observation (same slots, same env).
    """

    def __init__(self, layout: ArchiveLayout, config: ProcessingConfig, sas_version: str, obsids: Sequence[str],
                 context: Callable[[str], ObsContext]) -> None:
        self.layout, self.config, self.sas_version = layout, config, sas_version
        self.context = context
        self._todo = list(obsids)
        self._closed = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(config.num_cores, len(self._todo) or 1)),
                                        thread_name_prefix="head-start")
        self.started: list[str] = []

    def start(self) -> HeadStart:
        with _active_lock:
            _running.append(self)
        for obsid in self._todo:
            self._pool.submit(self._one, obsid)
        return self

    def close(self) -> None:
        """No observation is taken after this; those being run are finished."""
        self._closed.set()

    def join(self) -> None:
        self.close()
        self._pool.shutdown(wait=True)
        with _active_lock:
            if self in _running:
                _running.remove(self)

    def _one(self, obsid: str) -> None:
        done = threading.Event()
        with _active_lock:
            if self._closed.is_set() or interrupt.stop_requested():
                return
            _active[_key(self.layout, obsid)] = done
            self.started.append(obsid)
        try:
            with observation_lock(self.layout.obs_dir(obsid)):
                self._head(obsid)
        except Exception as exc:  # noqa: BLE001 - the subflow meets the same problem and records it
            log.debug("%s: head start stopped: %s", obsid, exc)
        finally:
            with _active_lock:
                _active.pop(_key(self.layout, obsid), None)
            done.set()

    def _head(self, obsid: str) -> None:
        """As the subflow's head chain does: unpack, then each call with the tokens before it."""
        unpack_odf(self.layout, obsid)
        record = read_observation_record(self.layout.odf_sum_asc(obsid), obs_id=obsid)
        si = observation_input(self.layout, record, self.config, parse_sas_version(self.sas_version))
        ctx, tokens = self.context(obsid), list[str]()
        for k, stage in enumerate(stages_for("observation", si)):
            calls = calls_only(stage.build(si))
            priority = call_priorities("observation", si, k, calls)  # as the flow's head chain has them
            for call in calls:
                at = dataclasses.replace(ctx, priority=priority[(call.unit, call.step)])
                tokens.append(run_call_blocking(with_upstream(call, tokens), at).token)
