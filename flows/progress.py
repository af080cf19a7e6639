"""Progress bars: one for the archive, one per observation being processed.

Tasks report to the module-level :data:`progress`, which does nothing until the command
line turns it on. It lives in the process that runs the flow; on a Dask cluster the
observations run elsewhere and only the archive bar moves. Uses ``rich``, which Prefect
already depends on.
"""

from __future__ import annotations

__all__ = ["progress", "Progress"]

import threading
from typing import Any

from daxa_xmm.sas.calls import SasCall


class Progress:
    """Thread-safe progress display; every method is a no-op while disabled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rich: Any = None
        self._overall: Any = None
        self._obs: dict[str, Any] = {}
        self.calls_done = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # Dask pickles the observation task by value, and with it this module-level object
        # (a thread lock, a live rich display): unpickle as the receiving process's own
        # display, which is what "only the archive bar moves on a cluster" means.
        return (_process_progress, ())

    @property
    def enabled(self) -> bool:
        return self._rich is not None

    def start(self, n_observations: int | None = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._rich = RichProgress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self._overall = self._rich.add_task("archive", total=n_observations, current="observations")
        self._rich.start()

    def set_total(self, n_observations: int) -> None:
        with self._lock:
            if self._rich is not None:
                self._rich.update(self._overall, total=n_observations)

    def stop(self) -> None:
        with self._lock:
            if self._rich is not None:
                self._rich.stop()
            self._rich = None
            self._obs.clear()

    def observation_started(self, obsid: str) -> None:
        with self._lock:
            if self._rich is not None and obsid not in self._obs:
                self._obs[obsid] = self._rich.add_task(f"  {obsid}", total=None, current="")

    def observation_finished(self, obsid: str) -> None:
        with self._lock:
            if self._rich is None:
                return
            task_id = self._obs.pop(obsid, None)
            if task_id is not None:
                self._rich.remove_task(task_id)
            self._rich.advance(self._overall)

    def started(self, obsid: str, call: SasCall) -> None:
        with self._lock:
            if self._rich is not None and obsid in self._obs:
                self._rich.update(self._obs[obsid], current=f"{call.step} {call.unit[len(obsid):]}")

    def finished(self, obsid: str, call: SasCall) -> None:
        with self._lock:
            self.calls_done += 1
            if self._rich is not None and obsid in self._obs:
                self._rich.advance(self._obs[obsid])


#: The process-wide progress display.
progress = Progress()


def _process_progress() -> Progress:
    """This process's display (what a pickled :class:`Progress` becomes when unpickled)."""
    return progress
