"""No SAS process outlives a run killed with SIGKILL (daxa_xmm.sas.orphans, used by the runner)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daxa_xmm.sas.orphans import owned_processes, owner_token, reap_orphans
from tests.reliability._support import owned_by, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")

#: A flow process in miniature: run_sas of a "SAS task" that starts a grandchild, both sleeping.
_OWNER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from daxa_xmm.sas.calls import SasCall
    from daxa_xmm.sas.orphans import owner_token
    from daxa_xmm.sas.runner import run_sas
    import daxa_xmm.sas.orphans as o
    print(owner_token(), flush=True)
    call = SasCall(step="epchain", obsid="0123456789", unit="0123456789PNS003",
                   argv=(sys.executable, "-c",
                         "import subprocess, sys, time; "
                         "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
                         "time.sleep(300)"),
                   cwd=Path(sys.argv[1]), timeout_s=600)
    if sys.argv[2] == "no-watchdog":
        o.ensure_watchdog()
        o._watchdog.kill()          # the watchdog dies first: only the next sweep can help
        o._watchdog.wait()
        o._watchdog_pid = -1        # and this process must not start another one
        o.ensure_watchdog = lambda: o.owner_token()
        import daxa_xmm.sas.runner as r
        r.ensure_watchdog = o.ensure_watchdog
    run_sas(call)
    """
)


def _start_owner(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-c", _OWNER, str(tmp_path / "work"), mode],
                            stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None
    token = proc.stdout.readline().decode().strip()
    assert token.startswith(f"{proc.pid}:"), token
    wait_for(lambda: len(owned_by(token)) >= 2, 30, "the task and its grandchild to start")
    return proc, token


def test_sigkilled_owner_leaves_no_sas_process(tmp_path: Path) -> None:
    owner, token = _start_owner(tmp_path, "watchdog")
    victims = owned_by(token)
    os.kill(owner.pid, signal.SIGKILL)   # no Python runs in the owner after this
    owner.wait()
    wait_for(lambda: not owned_by(token), 20, f"the watchdog to kill {victims}")


def test_the_next_run_sweeps_what_a_dead_watchdog_left(tmp_path: Path) -> None:
    owner, token = _start_owner(tmp_path, "no-watchdog")
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    left = owned_by(token)
    assert len(left) >= 2, "without a watchdog the SAS processes are orphaned (the fault is real)"
    killed = reap_orphans(None)
    assert set(left) <= set(killed)
    wait_for(lambda: not owned_by(token), 10, "the orphans to die")


def test_the_sweep_spares_processes_of_live_runs(tmp_path: Path) -> None:
    owner, token = _start_owner(tmp_path, "watchdog")
    try:
        reap_orphans(None)
        assert len(owned_by(token)) >= 2, "a live run's SAS processes must be left alone"
        assert set(owned_processes(token)) == set(owned_by(token))
    finally:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        wait_for(lambda: not owned_by(token), 20, "cleanup")


def test_owner_token_changes_with_the_process() -> None:
    assert owner_token().startswith(f"{os.getpid()}:")
    assert owner_token(1) != owner_token()
