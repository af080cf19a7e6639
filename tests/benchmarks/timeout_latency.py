"""Timeout latency: from a hung SAS call's deadline to the last process of its group being gone.

Run: ``python -m tests.benchmarks.timeout_latency [--repeats 5] [--timeout 2] [--out DIR]``.

Calls :func:`daxa_xmm.sas.runner.run_sas` directly (no Prefect) under a 2 s timeout, in two cases:

- ``standin_hang``: the stand-in ``merge`` told to hang (``DAXA_STANDIN_FAULTS`` action
  ``hang``): one process that dies on SIGTERM, as a SAS task does.
- ``grandchild_ignores_sigterm``: a task that starts a child which ignores SIGTERM (the
  worst case: SIGKILL after the runner's grace period), with the default grace (3 s) and
  with ``kill_grace_s=0.5``.

A watcher thread polls ``/proc`` every 2 ms for any live (non-zombie) process of the group,
so "gone" is measured from outside the runner, not taken from its own word. Writes
``<out>/timeout_latency.json``; the goal is a latency under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/timeout_latency.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import machine_info, setup_env, write_result

_GRANDCHILD = """
import signal, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"])
time.sleep(3600)
"""


def _group_members(pgid: int) -> list[int]:
    live = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            live.append(int(d))
    return live


class _Watcher(threading.Thread):
    """Find the call's process group (a new session whose leader runs ``marker``) and record
    the last moment any of its processes was alive."""

    def __init__(self, marker: str) -> None:
        super().__init__(daemon=True)
        self.marker, self.pgid, self.last_alive, self.stop = marker, None, None, threading.Event()

    def _find(self) -> int | None:
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cmd = open(f"/proc/{d}/cmdline", "rb").read().decode(errors="replace")
                    fields = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if self.marker in cmd and int(fields[2]) == int(d):
                    return int(d)
        return None

    def run(self) -> None:
        while not self.stop.is_set():
            if self.pgid is None:
                self.pgid = self._find()
            elif _group_members(self.pgid):
                self.last_alive = time.time()
            time.sleep(0.002)


def one(case: str, work: Path, timeout_s: float, grace_s: float) -> dict[str, Any]:
    from daxa_xmm.sas.calls import SasCall
    from daxa_xmm.sas.runner import run_sas

    cwd = work / f"{case}-{time.time_ns()}"
    if case == "standin_hang":
        marker = str(cwd.name)
        argv: tuple[str, ...] = ("merge", "set1=a.fits", "set2=b.fits", f"outset={marker}.fits")
    else:
        script = work / "grandchild.py"
        script.write_text(_GRANDCHILD)
        marker = cwd.name
        argv = (sys.executable, str(script), marker)
    call = SasCall(step="merge", obsid="0100000001", unit="0100000001PN-clean", argv=argv, cwd=cwd, timeout_s=timeout_s)
    watcher = _Watcher(marker)
    watcher.start()
    res = run_sas(call, log_dir=work / "logs", kill_grace_s=grace_s)
    returned = time.time()
    time.sleep(0.05)
    watcher.stop.set()
    watcher.join()
    deadline = res.started.timestamp() + timeout_s if hasattr(res.started, "timestamp") else res.started + timeout_s
    left = _group_members(watcher.pgid) if watcher.pgid else []
    return {
        "status": res.status,
        "group_found": watcher.pgid is not None,
        "deadline_to_gone_s": (watcher.last_alive - deadline) if watcher.last_alive else None,
        "deadline_to_return_s": returned - deadline,
        "processes_left": len(left),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.timeout_latency", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=2.0, help="the call's timeout in seconds (default 2)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--work", type=Path)
    ns = ap.parse_args(argv)

    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-timeout-"))
    setup_env(work, fast=True)
    import logging

    logging.getLogger("daxa_xmm.sas.runner").setLevel(logging.ERROR)  # one "timed out" warning per run otherwise
    os.environ["DAXA_STANDIN_FAULTS"] = json.dumps([{"task": "merge", "match": "", "action": "hang"}])
    cases = [("standin_hang", 3.0), ("grandchild_ignores_sigterm", 3.0), ("grandchild_ignores_sigterm", 0.5)]
    result: dict[str, Any] = {"benchmark": "timeout_latency", "machine": machine_info(),
                              "command": " ".join(["python -m tests.benchmarks.timeout_latency", *(argv if argv is not None else sys.argv[1:])]),
                              "timeout_s": ns.timeout, "cases": {}}
    try:
        for case, grace in cases:
            runs = [one(case, work, ns.timeout, grace) for _ in range(ns.repeats)]
            lat = [r["deadline_to_gone_s"] for r in runs if r["deadline_to_gone_s"] is not None]
            name = f"{case}/grace={grace:g}s"
            result["cases"][name] = {
                "runs": runs,
                "median_deadline_to_gone_s": statistics.median(lat) if lat else None,
                "max_deadline_to_gone_s": max(lat) if lat else None,
                "max_deadline_to_return_s": max(r["deadline_to_return_s"] for r in runs),
                "all_timed_out": all(r["status"] == "timeout" for r in runs),
                "processes_left": sum(r["processes_left"] for r in runs),
            }
            c = result["cases"][name]
            print(f"{name}: deadline -> group gone median {c['median_deadline_to_gone_s']}, max {c['max_deadline_to_gone_s']} s; "
                  f"left {c['processes_left']}", flush=True)
    finally:
        write_result(ns.out / "timeout_latency.json", result)
        if ns.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {ns.out / 'timeout_latency.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
