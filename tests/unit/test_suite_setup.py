"""The suite's own set-up (tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys


def test_the_suites_processes_keep_bytecode_caches() -> None:
    """Even where PYTHONDONTWRITEBYTECODE is set (the machine this was written on sets it), a
    process the suite starts, as each stand-in call is, writes and reads ``__pycache__``."""
    child = subprocess.run([sys.executable, "-c", "import sys; print(sys.dont_write_bytecode)"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "False" and not sys.dont_write_bytecode
