"""Process groups: signal a SAS call's whole group and wait until none of it is left.

DAXA ran SAS through ``sh -c`` and, on timeout, killed only the shell: the SAS child ran on.
Every call here starts in a new session (its own process group); on timeout, on a stop
request, or when children outlive their parent, the whole group gets SIGTERM, then SIGKILL
after a grace period, and the caller waits until no live process of the group is left.
"""

from __future__ import annotations

__all__ = ["kill_process_group", "wait_for_call"]

import contextlib
import logging
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from daxa_xmm.sas import interrupt
from daxa_xmm.sas.orphans import kill_call_processes

log = logging.getLogger(__name__)

#: How long to wait, after SIGKILL, for the kernel to take a group down before giving up.
_SETTLE_S = 10.0
_POLL_S = 0.02
#: How often a waiting call looks for a stop request.
_STOP_POLL_S = 0.25


def _live_members(pgid: int) -> list[int] | None:
    """Pids of the group's processes that are not zombies; None where /proc is unavailable.

    ``killpg(pgid, 0)`` succeeds while a zombie of the group is left, and an orphaned
    grandchild's zombie lingers for as long as PID 1 does not reap it (containers whose
    PID 1 is not an init). A zombie runs nothing, so it does not count as alive.
    """
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - non-Linux
        return None
    live: list[int] = []
    want = str(pgid)
    with os.scandir(proc) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            fields = stat.rpartition(")")[2].split()
            if len(fields) > 2 and fields[2] == want and fields[0] not in ("Z", "X", "x"):
                live.append(int(entry.name))
    return live


def _group_alive(pgid: int) -> bool:
    """True while any non-zombie process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a process we may not signal is still alive
        return True
    members = _live_members(pgid)
    return True if members is None else bool(members)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, limit_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    """Poll until group ``pgid`` has no live process or ``limit_s`` passed; reap ``proc``."""
    deadline = time.monotonic() + max(limit_s, 0.0)
    while True:
        if proc is not None:
            proc.poll()  # reap the leader, so its zombie does not keep the group "alive"
        if not _group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)


def kill_process_group(
    pgid: int,
    grace_s: float = 3.0,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    settle_s: float = _SETTLE_S,
) -> bool:
    """SIGTERM the whole group, wait ``grace_s``, SIGKILL what is left, wait until it is gone.

    SIGTERM first lets a SAS task close its FITS files; SIGKILL then ends whatever ignored it,
    grandchildren included. The SIGKILL is sent in a ``finally``: even an interruption during
    the grace period (a second Ctrl-C, a cancelled task) leaves nothing running.

    Args:
        pgid: the process group, which is the leader's pid for a ``start_new_session`` child.
        grace_s: seconds between SIGTERM and SIGKILL.
        proc: the group leader's Popen, reaped while waiting.
        settle_s: how long to wait after SIGKILL for the kernel to remove the processes.

    Returns:
        True when no live process of the group is left.
    """
    try:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGTERM)
            _wait_group_gone(pgid, grace_s, proc)
    finally:
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
    return _wait_group_gone(pgid, settle_s, proc)


class _ExitWatch:
    """Wakes the moment a process exits, through a pidfd where the kernel has them (Linux 5.3).

    ``Popen.wait(timeout)`` sleeps up to 50 ms between looks, so every SAS call kept its slot
    some 25 ms past its end on average; polling a pidfd returns at the exit itself. Without
    pidfds (older kernels, other systems, a sandbox that forbids them) it falls back to
    ``Popen.wait``.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._poll: select.poll | None = None
        self._fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(proc.pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the exit; True once the process has exited (reaped)."""
        if self._poll is not None and not self._poll.poll(max(0, round(timeout_s * 1000))):
            return self._proc.poll() is not None
        try:
            self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def wait_for_call(proc: subprocess.Popen[bytes], timeout_s: float | None, grace_s: float, call_token: str = "") -> str:
    """Wait for ``proc``; kill its group on timeout, on a stop request (Ctrl-C, SIGTERM: see
    :mod:`daxa_xmm.sas.interrupt`), on interruption and if children linger.

    Returns:
        ``"done"``, ``"timeout"`` or ``"interrupted"``.
    """
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    outcome = "done"
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    interrupt.register_group(pgid)
    watch = _ExitWatch(proc)
    try:
        while True:
            step_s = _STOP_POLL_S if deadline is None else max(0.0, min(_STOP_POLL_S, deadline - time.monotonic()))
            if watch.wait(step_s):
                break
            if deadline is not None and time.monotonic() >= deadline:
                outcome = "timeout"
                break
            if interrupt.stop_requested():
                outcome = "interrupted"
                break
    finally:
        watch.close()
        # Reached on timeout, on a stop request, on normal exit (a child may leave
        # grandchildren running) and on KeyboardInterrupt or any BaseException while waiting.
        if _group_alive(pgid):
            if outcome == "done" and proc.returncode is not None:
                log.warning("process group %d outlived its leader; killing it", pgid)
            if not kill_process_group(pgid, grace_s, proc=proc):
                log.error("process group %d still has live processes after SIGKILL", pgid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_SETTLE_S)
        interrupt.unregister_group(pgid)
        if call_token:  # a grandchild that left the group (setsid) still carries the call's marker
            kill_call_processes(call_token, grace_s)
    return outcome
