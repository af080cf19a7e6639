"""The stop signals of the command line (daxa_xmm.sas.interrupt), each in a fresh Python process:
signal handlers belong to a process's main thread, and the test runner has its own."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import os, signal, sys
from daxa_xmm.sas import interrupt
if sys.argv[1] == "nohup":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
interrupt.enable()
with interrupt.handle_signals():
    os.kill(os.getpid(), signal.SIGHUP)  # a signal to itself is handled before the next line
    print(interrupt.stop_requested(), interrupt.exit_code(), signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
"""


def _probe(mode: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_sighup_stops_the_run_as_ctrl_c_does() -> None:
    # issue 34.2: the terminal closing is a stop request, exit 128 + 1, not a silent death
    assert _probe("terminal") == ["True", "129", "False", "False"]


def test_a_sighup_ignored_at_start_stays_ignored() -> None:
    # `nohup daxa-xmm ...`: the user asked the run to outlive the terminal
    assert _probe("nohup") == ["False", "None", "True", "True"]
