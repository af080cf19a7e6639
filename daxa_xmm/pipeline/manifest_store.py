"""One observation's manifest, shared by the threads and processes that update it.

:mod:`daxa_xmm.pipeline.manifest` says what a manifest holds and how a record is made;
this module is how many writers share one file without losing an update.
"""

from __future__ import annotations

__all__ = ["ManifestStore"]

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from daxa_xmm.pipeline.manifest import (
    Manifest,
    StepRecord,
    StepStatus,
    is_up_to_date,
    mark,
    mark_stale,
    read_manifest,
    record_result,
    save_manifest,
)
from daxa_xmm.sas.calls import SasCall, SasResult

T = TypeVar("T")


class ManifestStore:
    """The manifest of one observation, shared by the threads (and processes) updating it.

    Many tasks of one observation finish at once, in threads of one flow run or in Dask
    worker processes. Every update takes a thread lock and an ``flock`` on
    ``<manifest>.lock``, re-reads the file (so updates made by another process are kept),
    applies the change and saves atomically before releasing: no update is lost and a crash
    mid-save leaves the previous file intact.

    Args:
        path: the manifest file, e.g. ``processed/<obsid>/manifest.json``.
        obsid: the observation.

    Example:
        >>> store = ManifestStore(layout.manifest(obsid), obsid)  # doctest: +SKIP
        >>> if not store.is_up_to_date(call, sas_version):  # doctest: +SKIP
        ...     store.record(run_sas(call), sas_version)
    """

    def __init__(self, path: str | os.PathLike[str], obsid: str) -> None:
        self.path = Path(path)
        self.obsid = obsid
        self._lock = threading.Lock()
        self._lockfile = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"ManifestStore({str(self.path)!r}, {self.obsid!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing drops the flock

    def _current(self) -> Manifest:
        """The saved manifest; a corrupt file is set aside once and replaced at once."""
        manifest, corrupt = read_manifest(self.path, self.obsid)
        if corrupt:
            save_manifest(manifest, self.path)
        return manifest

    def update(self, change: Callable[[Manifest], T]) -> T:
        """Apply ``change`` to the current manifest and save it; return what ``change`` returned."""
        with self._locked():
            manifest = self._current()
            out = change(manifest)
            save_manifest(manifest, self.path)
            return out

    def snapshot(self) -> Manifest:
        """A copy of the manifest as saved now; changing it changes nothing on disk."""
        with self._locked():
            return self._current()

    def get(self, unit: str, step: str) -> StepRecord | None:
        """The current record of ``step`` for ``unit``."""
        return self.snapshot().get(unit, step)

    def record(
        self, result: SasResult, sas_version: str, attempts: int = 1, facts: dict[str, Any] | None = None
    ) -> StepRecord:
        """:func:`record_result`, saved."""
        return self.update(lambda m: record_result(m, result, sas_version, attempts, facts))

    def mark(self, call: SasCall, status: StepStatus, message: str = "", *, sas_version: str = "") -> StepRecord:
        """:func:`mark`, saved."""
        return self.update(lambda m: mark(m, call, status, message, sas_version=sas_version))

    def mark_stale(self, call: SasCall, message: str) -> StepRecord | None:
        """:func:`mark_stale`, saved."""
        return self.update(lambda m: mark_stale(m, call, message))

    def is_up_to_date(self, call: SasCall, sas_version: str) -> bool:
        """:func:`is_up_to_date` against the manifest as saved now."""
        return is_up_to_date(self.snapshot(), call, sas_version)

    def quality_note(self) -> str:
        """The observation's data-quality outcomes as its manifest records them, in one line
        for its message ("" when there are none): they are not failures."""
        found = [f"{r.step} [{r.unit}]" for r in self.snapshot().records.values() if r.status == "data_quality"]
        return f"{len(found)} data-quality outcome(s), not failures: {', '.join(found)}" if found else ""
