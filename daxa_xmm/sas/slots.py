"""SAS slots: at most ``n`` SAS processes at once, across threads, processes and runs.

One lock file per slot in a shared folder; a call holds one (``flock``) while its SAS
process runs. The kernel drops a dead holder's lock, so a killed run never leaves a slot
taken.

When every slot is taken, the waiting calls queue in the same folder, and a freed slot goes
to the call with the most work still behind it (its *priority*: the remaining critical path
of its observation, :func:`daxa_xmm.pipeline.stages.path_s`), across observations and across runs on
the host; equal priorities are served first come, first served. A late observation's
cifbuild then starts before other observations' images instead of behind them.
"""

from __future__ import annotations

__all__ = ["FileSlots", "SlotLike", "gate"]

import contextlib
import errno
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from daxa_xmm.errors import ConfigError
from daxa_xmm.sas import interrupt

#: A concurrency gate: a context manager (``threading.Semaphore``, :class:`FileSlots`) or a
#: zero-argument factory returning one.
SlotLike = AbstractContextManager[Any] | Callable[[], AbstractContextManager[Any]]


class _Wakeup:
    """Tells this process's waiting calls that a slot was freed or the queue moved on.

    A waiter sleeps between its looks at the slot files; a slot that another process frees
    is seen at the next look, but one freed in this process (where a run's calls live) wakes
    its waiters at once, and the slot sits idle only as long as a thread takes to wake. The
    generation counter closes the gap between a waiter's look and its sleep: a release in
    between makes the sleep return at once.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def seen(self) -> int:
        with self._cond:
            return self._generation

    def sleep(self, seen: int, timeout_s: float) -> None:
        with self._cond:
            if self._generation == seen:
                self._cond.wait(timeout_s)

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()


_WAKEUP = _Wakeup()


class _Lease:
    """One held slot: an open, flock'ed file descriptor."""

    def __init__(self, index: int, fd: int) -> None:
        self.index = index
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
                _WAKEUP.notify()


#: Rank of priority 0; a priority above ~3 years of remaining work ranks as that.
_TOP = 10**11


class _Ticket:
    """A waiting call's place in the queue: ``queue/<rank>-<time>-<pid>-<thread>.wait``,
    held under an exclusive ``flock`` while it waits, so that a ticket nobody holds is known
    to belong to a waiter that died. Names sort in serving order: the highest priority
    first, then the earliest."""

    def __init__(self, queue: Path, priority: float) -> None:
        queue.mkdir(parents=True, exist_ok=True)
        # milliseconds of remaining path, inverted, fixed width: names sort highest first
        rank = _TOP - round(min(max(priority, 0.0), _TOP / 1000) * 1000)
        self.name = f"{rank:015d}-{time.time_ns():020d}-{os.getpid()}-{threading.get_ident()}.wait"
        self.path = queue / self.name
        # locked before it is visible: a ticket under its final name always has a live holder
        hidden = queue / f".{self.name}.tmp"
        self._fd: int | None = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(hidden, self.path)

    def is_first(self) -> bool:
        """Whether no live ticket is ahead of this one (dead ones are removed on the way)."""
        for name in sorted(n for n in os.listdir(self.path.parent) if n.endswith(".wait")):
            if name >= self.name:
                return True
            if _holder_alive(self.path.parent / name):
                return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            os.close(fd)
            _WAKEUP.notify()  # the next in the queue may now take a free slot


def _holder_alive(ticket: Path) -> bool:
    """True while the ticket's waiter holds it; a ticket whose waiter died is removed."""
    try:
        fd = os.open(ticket, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        with contextlib.suppress(FileNotFoundError):
            ticket.unlink()
        return False
    finally:
        os.close(fd)


class FileSlots:
    """A counting semaphore across threads and processes: ``n`` lock files under ``folder``.

    Holding a slot means holding an exclusive ``flock`` on one of ``slot-<i>.lock``. flock
    locks belong to open file descriptions, so two threads of one process exclude each other
    just as two processes do, and the kernel drops a lock when its holder dies: a crashed
    worker never leaks a slot. This caps concurrent SAS processes across threads, subflows,
    Dask workers and two flow runs on one machine, which Prefect's tag limits do not do
    exactly.

    Use it as a context manager (the held slots are tracked per thread, so one instance may
    be shared), or :meth:`acquire` a lease and release it.

    Args:
        folder: where the lock files live; created if missing. Every process that shares
            the cap must use the same folder.
        n: how many holders at once.
        poll_s: mean sleep between looks at the slot files while every slot is taken; a
            slot freed in this process wakes its waiters at once.
        priority: the place in the queue of a call made under ``with`` (see the module's
            docstring): the higher, the sooner.

    Example:
        >>> slots = FileSlots(Path("/tmp/daxa-slots"), 4)  # doctest: +SKIP
        >>> with slots:  # doctest: +SKIP
        ...     run_the_sas_task()
    """

    def __init__(self, folder: str | os.PathLike[str], n: int, *, poll_s: float = 0.05, priority: float = 0.0) -> None:
        if n < 1:
            raise ConfigError(f"FileSlots needs at least one slot, got n={n}")
        self.folder = Path(folder)
        self.n = n
        self.poll_s = poll_s
        self.priority = priority
        self._local = threading.local()

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable for process pools (threading.local is not): same folder, same cap.
        return (self.__class__, (self.folder, self.n), {"poll_s": self.poll_s, "priority": self.priority})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.poll_s = state["poll_s"]
        self.priority = state.get("priority", 0.0)

    def __repr__(self) -> str:
        return f"FileSlots({str(self.folder)!r}, n={self.n}, priority={self.priority:g})"

    def _try(self, index: int) -> _Lease | None:
        fd = os.open(self.folder / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        return _Lease(index, fd)

    def acquire(self, timeout_s: float | None = None) -> _Lease:
        """Take a free slot, waiting in the queue for one at this instance's priority; raise
        ``TimeoutError`` after ``timeout_s``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        ticket = _Ticket(self.folder / "queue", self.priority)
        try:
            while True:
                seen = _WAKEUP.seen()
                if interrupt.stop_requested():
                    raise interrupt.Interrupted(f"stop requested while waiting for a SAS slot in {self.folder}")
                first = ticket.is_first()
                if first:
                    start = random.randrange(self.n)  # spread holders over the files
                    for k in range(self.n):
                        lease = self._try((start + k) % self.n)
                        if lease is not None:
                            return lease
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"no free slot in {self.folder} after {timeout_s} s")
                # only the first in the queue may take a slot: it looks often, the others less;
                # a slot freed in this process wakes them at once
                _WAKEUP.sleep(seen, self.poll_s * (0.2 if first else 1.0) * (0.5 + random.random()))
        finally:
            ticket.close()

    def _stack(self) -> list[_Lease]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def __enter__(self) -> FileSlots:
        self._stack().append(self.acquire())
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack().pop().release()


def gate(slot: SlotLike | None) -> AbstractContextManager[Any]:
    if slot is None:
        return contextlib.nullcontext()
    if hasattr(slot, "__enter__") and hasattr(slot, "__exit__"):
        return slot
    return slot()
