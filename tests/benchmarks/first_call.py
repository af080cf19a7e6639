"""Time to the first SAS call: how long a user waits before SAS works, with and without the head start.

For each repeat: a fresh synthetic archive, the command ``python -m flows.process_archive``
as a user runs it (temporary Prefect server; ``PREFECT_HOME`` fresh on the first repeat,
used after), timed from its start to the first SAS call's start, to the first call of a
sub-exposure (the flow is running by then), and to its end. The head start
(daxa_xmm/pipeline/head_start.py) is switched off in the ``without`` runs by calling the command's
``main`` with it replaced. Run: ``python -m tests.benchmarks.first_call --repeats 2``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks._common import machine_info, setup_env, write_result

REPO = Path(__file__).resolve().parents[2]
_WITHOUT = "import sys, flows.cli as c; c._head_start = lambda *a, **k: None; sys.exit(c.main(sys.argv[1:]))"


def _one(work: Path, archive: Path, head_start: bool, args: list[str]) -> dict[str, Any]:
    log = work / "calls.jsonl"
    log.unlink(missing_ok=True)
    out = work / f"out-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "flows.process_archive"] if head_start else [sys.executable, "-c", _WITHOUT]
    t0 = time.time()
    run = subprocess.run([*cmd, str(archive), "--out", str(out), "--no-progress", *args],  # noqa: S603
                         cwd=REPO, capture_output=True, text=True, check=False)
    whole = time.time() - t0
    if run.returncode != 0:
        raise RuntimeError(f"run failed:\n{run.stdout}\n{run.stderr}")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["task"] != "sasversion"]
    units = [r["start"] for r in rows if r["task"] not in ("cifbuild", "odfingest")]
    return {"head_start": head_start, "calls": len(rows), "first_call_s": min(r["start"] for r in rows) - t0,
            "first_unit_call_s": (min(units) - t0) if units else None, "whole_s": whole}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.first_call", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="observations (default 3, as the demo)")
    ap.add_argument("--repeats", type=int, default=2, help="runs with and without the head start, interleaved")
    ap.add_argument("--instruments", nargs="+", default=["PN", "M1", "M2", "R1", "R2"])
    ap.add_argument("--fast", action="store_true", help="the stand-in's fast mode (placeholder products)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--work", type=Path, help="keep the work folder here (default: temporary, removed)")
    ns = ap.parse_args(argv)
    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-first-call-"))
    result: dict[str, Any] = {"benchmark": "first_call", "machine": machine_info(),
                              "command": " ".join(["python -m tests.benchmarks.first_call",
                                                   *(argv if argv is not None else sys.argv[1:])]), "runs": []}
    try:
        setup_env(work, fast=ns.fast)
        from daxa_xmm.standin.synth import write_archive

        archive = work / "archive"
        write_archive(archive, ns.n, mix="demo" if ns.n == 3 else "standard")
        args = ["--instruments", *ns.instruments, "--retries", "0"]
        for k in range(ns.repeats):
            for head_start in (True, False) if k % 2 == 0 else (False, True):
                row = _one(work, archive, head_start, args)
                row["prefect_home"] = ("external server" if os.environ.get("PREFECT_API_URL")
                                       else "fresh" if not result["runs"] else "used")
                result["runs"].append(row)
                print(f"head start {'on ' if head_start else 'off'}: first call {row['first_call_s']:.2f} s, first unit "
                      f"call {row['first_unit_call_s']:.2f} s, whole {row['whole_s']:.1f} s ({row['prefect_home']} "
                      f"PREFECT_HOME)", flush=True)
    finally:
        if ns.work is None:
            shutil.rmtree(work, ignore_errors=True)
    write_result(ns.out / "first_call.json", result)
    print(f"wrote {ns.out / 'first_call.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
