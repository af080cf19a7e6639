"""One run at a time per observation, across processes, with no stale lock after a crash.

An ``flock`` is held by an open file descriptor: when the holding process exits, however
it exits (SIGKILL included), the kernel drops the lock. A resumed run therefore never
finds a lock left behind, unlike a lock *file* whose existence is the lock.
"""

from __future__ import annotations

__all__ = ["ObservationBusy", "observation_lock"]

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from daxa_xmm.errors import DaxaXmmError


class ObservationBusy(DaxaXmmError, RuntimeError):
    """Another run is processing this observation right now."""


@contextmanager
def observation_lock(obs_dir: Path) -> Iterator[Path]:
    """Hold ``<obs_dir>/.lock`` exclusively for the duration of the block.

    Raises:
        ObservationBusy: naming the folder, when another process holds it.
    """
    obs_dir.mkdir(parents=True, exist_ok=True)
    path = obs_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise ObservationBusy(
                f"{obs_dir.name}: another run (pid {holder}) is processing this observation; "
                "it was left alone. Run again when that run has finished."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield path
    finally:
        os.close(fd)
