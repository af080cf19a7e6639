"""The SAS runner leaves no process behind: a timeout, an interrupt or a normal exit ends the
call's whole process group, and a grandchild that left the group (``setsid``) too."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from daxa_xmm.errors import SasTimeout
from daxa_xmm.sas.calls import OutputSpec
from daxa_xmm.sas.runner import raise_for_result, run_sas
from tests.fake_sas import HANGING, UNIT, fake_task, hanging_pids, running, sas_call


# --------------------------------------------------------------------------- no survivors
def test_timeout_kills_the_whole_group_and_moves_nothing(tmp_path: Path) -> None:
    """THE key test: a grandchild that ignores SIGTERM must not outlive the call."""
    env = fake_task(tmp_path, "espfilt", HANGING)
    dest = tmp_path / "products" / "out.fits"
    timeout_s, grace_s = 1.0, 0.5
    call = sas_call(tmp_path, outputs=(OutputSpec("out.fits", dest),), timeout_s=timeout_s)
    res = run_sas(call, extra_env=env, kill_grace_s=grace_s)
    assert res.status == "timeout"
    # returned at the kill, not after the task's 60 s sleep (a bound no loaded machine nears)
    assert res.duration_s < 30
    assert "timed out after 1 s" in res.message and UNIT in res.message
    assert res.exit_code == -signal.SIGKILL  # it ignored SIGTERM
    child, grandchild = hanging_pids(call.cwd)
    assert not running(child)
    assert not running(grandchild)
    # the half-written output stays in the scratch folder, never at the product path
    assert (call.cwd / "out.fits").exists()
    assert not dest.exists() and res.products == ()
    with pytest.raises(SasTimeout) as info:
        raise_for_result(res)
    assert info.value.transient and isinstance(info.value, TimeoutError)
    assert "hanging" in res.stdout_log.read_text()  # type: ignore[union-attr]


def test_leftover_grandchild_after_normal_exit_is_killed(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "rgsproc", """
        import subprocess
        gc = subprocess.Popen(["sleep", "60"])
        open("gc.pid", "w").write(str(gc.pid))
    """)
    call = sas_call(tmp_path, "rgsproc", outputs=(OutputSpec("gc.pid"),))
    res = run_sas(call, extra_env=env, kill_grace_s=0.5)
    assert res.ok, res.message
    assert not running(int((call.cwd / "gc.pid").read_text()))


def test_interrupt_kills_the_group_and_reraises(tmp_path: Path) -> None:
    """A cancelled runner (Ctrl-C, a cancelled task) leaves no SAS process behind."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        pytest.skip("signals are delivered to the main thread only")
    env = fake_task(tmp_path, "espfilt", HANGING)
    call = sas_call(tmp_path, timeout_s=None)
    pidfile = call.cwd / "pids"

    def interrupt(signum: int, frame: object) -> None:
        if pidfile.exists():
            raise KeyboardInterrupt
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # not started yet: look again soon

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            run_sas(call, extra_env=env, kill_grace_s=0.3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    child, grandchild = hanging_pids(call.cwd)
    assert not running(child)
    assert not running(grandchild)


@pytest.mark.parametrize("hang", [True, False])
def test_a_grandchild_that_left_the_group_is_killed_with_its_call(tmp_path: Path, hang: bool) -> None:
    # issue 12.9: `setsid` takes a grandchild out of the call's process group; the call's
    # marker in its environment still finds it, at the timeout or when the call ends
    env = fake_task(tmp_path, "epchain", f"""
        import os, subprocess, sys, time
        gc = subprocess.Popen(["setsid", "sleep", "60"])
        open("gc.pid", "w").write(str(gc.pid))
        if {hang!r}:
            time.sleep(60)
    """)
    call = sas_call(tmp_path, "epchain", timeout_s=2.0 if hang else None)
    res = run_sas(call, extra_env=env, kill_grace_s=0.5)
    assert res.status == ("timeout" if hang else "ok"), res.message
    grandchild = int((call.cwd / "gc.pid").read_text())
    assert not running(grandchild)
