"""The per-observation lock: exclusive across processes, gone when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.pipeline.locks import ObservationBusy, observation_lock

HOLD = """
import sys, time
from pathlib import Path
from daxa_xmm.pipeline.locks import observation_lock
with observation_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(obs_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(obs_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    obs = tmp_path / "0201903501"
    proc = _holder(obs)
    try:
        with pytest.raises(ObservationBusy, match=f"pid {proc.pid}") as info:
            with observation_lock(obs):
                pass
        assert "0201903501" in str(info.value)
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    obs = tmp_path / "0201903501"
    proc = _holder(obs)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with observation_lock(obs) as path:
        assert path.read_text() == str(os.getpid())


def test_lock_is_released_after_the_block(tmp_path: Path) -> None:
    obs = tmp_path / "0201903501"
    with observation_lock(obs):
        pass
    with observation_lock(obs):
        pass
