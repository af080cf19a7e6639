"""A SAS call's end is seen through a pidfd where the kernel offers one, through
``Popen.wait`` where it does not; both say the same thing at the same points."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from daxa_xmm.sas.process_group import _ExitWatch


@pytest.fixture(params=["pidfd", "popen-wait"])
def watch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "popen-wait":
        def refused(pid: int) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", refused)
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd on this system")
    return str(request.param)


def test_a_process_that_ended_is_seen_and_reaped(watch_mode: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    watch = _ExitWatch(proc)
    try:
        assert (watch._poll is not None) == (watch_mode == "pidfd")
        assert watch.wait(60)
        assert proc.returncode == 3
    finally:
        watch.close()


def test_a_running_process_is_not_taken_for_ended(watch_mode: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    watch = _ExitWatch(proc)
    try:
        assert not watch.wait(0.05)
        assert proc.returncode is None
        proc.kill()
        assert watch.wait(60)
        assert proc.returncode is not None
    finally:
        watch.close()
        proc.kill()
        proc.wait()
