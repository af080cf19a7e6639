"""Fake SAS tasks for the runner's tests: small Python scripts written into a test's folder.

Each fake is an executable with a shebang, put on PATH through ``extra_env`` exactly as the
SAS stand-in is, so ``argv[0]`` is a bare task name as with real SAS.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

from daxa_xmm.sas.calls import SasCall

OBSID = "0201903501"
UNIT = "0201903501PNS003"


def fake_task(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    """Write an executable fake SAS task ``name``; return the env putting it on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


def sas_call(tmp_path: Path, task: str = "espfilt", *args: str, **kwargs: object) -> SasCall:
    kwargs.setdefault("cwd", tmp_path / "work")
    return SasCall(step="espfilt", obsid=OBSID, unit=UNIT, argv=(task, *args), **kwargs)  # type: ignore[arg-type]


def running(pid: int) -> bool:
    """True if ``pid`` is a live process. A zombie is not: it runs nothing, and an orphan's
    zombie lingers here because this container's PID 1 does not reap."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return fields[0] not in ("Z", "X")


# A task whose child ignores SIGTERM and whose grandchild ignores it too and sleeps 60 s.
# It writes a partial output first, then both pids, then hangs.
HANGING = """
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open("out.fits", "w") as fh:
        fh.write("half a FITS file")
    gc = subprocess.Popen(
        ["sleep", "60"], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)
    )
    with open("pids.tmp", "w") as fh:
        fh.write(f"{os.getpid()} {gc.pid}")
    os.replace("pids.tmp", "pids")
    print("hanging", flush=True)
    time.sleep(60)
"""


def hanging_pids(cwd: Path) -> tuple[int, int]:
    child, grandchild = (cwd / "pids").read_text().split()
    return int(child), int(grandchild)
