"""Stopping a run on Ctrl-C, SIGTERM or SIGHUP: no new SAS call starts, the running ones are ended.

A SAS call can take hours, so a user must be able to stop a run and get a consistent state
back. The first SIGINT, SIGTERM or SIGHUP (the terminal or SSH session closed, the commonest
way a long run is stopped) sets a process-wide stop flag: the runner starts no new
SAS call and terminates the process groups of the running ones (SIGTERM, then SIGKILL after
the grace period), their manifest records say ``interrupted``, the observations and the
report are written as usual, and the command exits with 128 + the signal (130, 143 or 129). A
second signal exits at once, after a SIGKILL to every SAS process group still alive. A re-run
resumes where the run stopped: interrupted calls are not ``ok``, so they run again.

A SIGHUP ignored when the command started (``nohup``) stays ignored: that is how a user asks
a run to outlive the terminal. After a hang-up the terminal is gone and writing to it fails
(EIO), so the output that went there goes to /dev/null from then on and the stop goes on.

Only the command line installs the handlers: :func:`during_start_up` while Prefect starts
(the head start's SAS calls already run then), :func:`handle_signals` inside the flow. Under
a Prefect worker or ``deployments.serve`` a SIGTERM is Prefect's cancellation and stays
Prefect's.
"""

from __future__ import annotations

__all__ = [
    "Interrupted",
    "STOP_SIGNALS",
    "enable",
    "handle_signals",
    "during_start_up",
    "request_stop",
    "stop_for",
    "stop_reason",
    "stop_requested",
    "sleep",
    "exit_code",
    "register_group",
    "unregister_group",
    "reset",
]

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator

from daxa_xmm.errors import DaxaXmmError

log = logging.getLogger(__name__)

_stop = threading.Event()
_signal: int | None = None
_reason: str | None = None
_enabled = False
_groups: set[int] = set()
_groups_lock = threading.Lock()


class Interrupted(DaxaXmmError, RuntimeError):
    """The run was asked to stop (Ctrl-C, SIGTERM or SIGHUP); the call did not run or was ended."""


def enable() -> None:
    """Let :func:`handle_signals` install the handlers in this process (the command line)."""
    global _enabled
    _enabled = True


def request_stop(signum: int = signal.SIGINT) -> None:
    """Ask the run to stop, as the first signal does."""
    global _signal
    if _signal is None:
        _signal = signum
    _stop.set()


def stop_for(reason: str) -> None:
    """Stop the command line's run for ``reason`` (the disk is full), as a first signal does
    but without one: :func:`exit_code` stays None and :func:`stop_reason` says why.

    Only where :func:`enable` was called: a served deployment or a notebook goes on with
    its next run, which must not find itself stopped.
    """
    global _reason
    if not _enabled:
        return
    if _reason is None:
        _reason = reason
        log.error("stopping the run: %s", reason)
    _stop.set()


def stop_reason() -> str | None:
    """Why :func:`stop_for` stopped the run, or None."""
    return _reason


def stop_requested() -> bool:
    """Whether the run was asked to stop."""
    return _stop.is_set()


def sleep(seconds: float) -> None:
    """Wait ``seconds``, or less when the run is asked to stop (a retry's delay)."""
    _stop.wait(seconds)


def exit_code() -> int | None:
    """128 + the stopping signal (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP), or None."""
    return None if _signal is None else 128 + _signal


def register_group(pgid: int) -> None:
    """A SAS process group started: a second signal SIGKILLs it before exiting."""
    with _groups_lock:
        _groups.add(pgid)


def unregister_group(pgid: int) -> None:
    with _groups_lock:
        _groups.discard(pgid)


def _kill_all() -> None:
    with _groups_lock:
        groups = list(_groups)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


#: The signals that stop the command line's run.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _drop_hung_up_terminal() -> None:
    """Send stdout and stderr to /dev/null where writing to them fails: a terminal that hung up.

    A hung-up terminal answers every write with EIO (even an empty one, and it no longer
    says it is a terminal), which would turn the clean stop's last messages, and the
    logging after them, into errors. Output to a file or a live terminal is kept.
    """
    for fd in (1, 2):
        try:
            os.write(fd, b"")
        except OSError:
            null = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
            os.close(null)


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, text.encode())


def _handler(signum: int, _frame: object) -> None:
    if signum == signal.SIGHUP:
        _drop_hung_up_terminal()
    if _stop.is_set():  # the second signal: no more waiting
        _kill_all()
        _say("\nstopped at once; SAS processes killed\n")
        os._exit(128 + signum)
    request_stop(signum)
    _say(f"\n{signal.Signals(signum).name}: stopping - no new SAS call starts, running ones are "
         f"ended; the report is written. Press Ctrl-C again to stop at once.\n")


def _handler_during_start_up(signum: int, frame: object) -> None:
    _handler(signum, frame)
    raise KeyboardInterrupt  # and out of Prefect's start-up, which can take many seconds


@contextlib.contextmanager
def during_start_up() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the run while Prefect starts, before the flow's own handling.

    The stop is set by the handler itself, so the head start's running SAS calls are ended
    and none starts whatever becomes of the KeyboardInterrupt it then raises: Prefect's
    start-up may swallow it (the run then stops as soon as the flow begins) or be stuck
    where it cannot land (a second signal exits at once). Python's default handler only
    raises, and a swallowed or stranded KeyboardInterrupt left a hung call running.
    Does nothing unless :func:`enable` was called, or off the main thread.
    """
    with _installed(_handler_during_start_up):
        yield


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP stop the run (see the module docstring) inside this block.

    Does nothing unless :func:`enable` was called, or off the main thread. Installed inside
    the archive flow because Prefect's flow engine installs its own SIGTERM handler when a
    flow starts; the previous handlers come back at the end.
    """
    with _installed(_handler):
        yield


@contextlib.contextmanager
def _installed(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for the stop signals inside the block, the previous ones after it; only
    on the main thread of the command line (:func:`enable`). A signal ignored when the
    block starts (SIGHUP under ``nohup``) stays ignored."""
    if not _enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def reset() -> None:
    """Forget a stop request (tests, and a process that runs several archives)."""
    global _signal, _reason
    _signal = None
    _reason = None
    _stop.clear()
