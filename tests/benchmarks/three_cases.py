"""Issue 14's three cases: the whole command, its SAS makespan against the lower bound, the
time to the first SAS call, and DAXA's schedule (a barrier after each step) on the same work.

The demo archive (three observations, PN and MOS), the stand-in in fast mode with per-task
sleeps (epchain 4 s, emchain 3 s, espfilt 1 s, evselect 0.4 s, emanom 0.3 s, cifbuild and
odfingest 0.5 s), one image band. Cases: 2 slots; 4 slots; 4 slots with one observation's
epchain 30 s longer per call, once for the first and once for the last observation that has
a PN chain (``--straggler-at``).

Each flow run is the command as a user runs it (``python -m flows.process_archive``, its
temporary Prefect server on a used ``PREFECT_HOME``), timed from its start. The barrier
baseline is :func:`tests.benchmarks.makespan.run_barrier` (DAXA's stage-by-stage schedule,
in this process). With ``--daxa-python``, DAXA 0.3.7 itself runs each case as well, after
the flow, on the same archive and stand-in (:mod:`tests.benchmarks.daxa_run`; it needs a
Python of its own, 3.12 or later). Lower bound = max(critical path, total call time /
slots), each call counted from its process start (``proc_s``). Run:
``python -m tests.benchmarks.three_cases --out bench-results [--daxa-python DAXA_VENV/bin/python]``
(about 8 minutes, 12 with DAXA).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from daxa_xmm.standin.faults import read_call_log
from tests.benchmarks._common import load_records, lower_bound, machine_info, setup_env, write_result

REPO = Path(__file__).resolve().parents[2]
DURATIONS = {"cifbuild": 0.5, "odfingest": 0.5, "epchain": 4.0, "emchain": 3.0, "espfilt": 1.0, "evselect": 0.4,
             "emanom": 0.3}
STRAGGLER_EXTRA_S = 30.0
CONFIG = "instruments: [PN, M1, M2]\nimages:\n  bands: [['0.5 keV', '2.0 keV']]\nretries: 0\n"


def _flow(work: Path, archive: Path, cap: int, tag: str) -> dict[str, Any]:
    call_log = work / "calls.jsonl"
    call_log.unlink(missing_ok=True)
    out = work / f"out-{tag}"
    t0 = time.time()
    run = subprocess.run([sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out),  # noqa: S603
                          "--config", str(work / "config.yaml"), "--num-cores", str(cap), "--no-progress"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    whole = time.time() - t0
    if run.returncode != 0:
        raise RuntimeError(f"{tag}: the command failed:\n{run.stdout}\n{run.stderr}")
    rows = load_records(out, call_log)
    starts = [r["start"] for r in rows if r["start"]]
    ends = [r["end"] for r in rows if r["end"]]
    span = max(ends) - min(starts)
    bound = lower_bound(rows, cap, "proc_s")
    return {"calls": len(rows), "epchain_obsids": sorted({r["obsid"] for r in rows if r["step"] == "epchain"}),
            "whole_command_s": whole, "first_call_s": min(starts) - t0, "sas_span_s": span,
            "lower_bound": bound, "ratio_span_to_lb": span / bound["lower_bound_s"]}


def _daxa(work: Path, archive: Path, cap: int, tag: str, python: str) -> dict[str, Any]:
    """DAXA 0.3.7 itself on the same archive and stand-in (:mod:`tests.benchmarks.daxa_run`,
    under ``python``), timed as a user's script from its start: an empty folder of its own,
    which DAXA takes for its output and configuration."""
    call_log = work / "calls.jsonl"
    call_log.unlink(missing_ok=True)
    out = work / f"daxa-{tag}"
    out.mkdir()
    t0 = time.time()
    run = subprocess.run([python, str(REPO / "tests" / "benchmarks" / "daxa_run.py"), "--odfs", str(archive),  # noqa: S603
                          "--cores", str(cap), "--result", str(out / "daxa.json")],
                         cwd=out, env={**os.environ, "XDG_CONFIG_HOME": str(out / "config")},
                         capture_output=True, text=True, check=False)
    whole = time.time() - t0
    if run.returncode != 0:
        raise RuntimeError(f"{tag}: DAXA failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    calls = [r for r in read_call_log(call_log) if r.get("end") is not None]
    steps = json.loads((out / "daxa.json").read_text())["steps"]
    return {"calls": len(calls), "failed_calls": sum(r.get("exit") != 0 for r in calls),
            "calls_by_task": {t: sum(r["task"] == t for r in calls) for t in sorted({r["task"] for r in calls})},
            "whole_command_s": whole, "first_call_s": min(r["start"] for r in calls) - t0,
            "sas_span_s": max(r["end"] for r in calls) - min(r["start"] for r in calls),
            "sas_work_s": sum(r["end"] - r["start"] for r in calls),
            "step_errors": {s["step"]: s["error"] for s in steps if s.get("error")}}


def _barrier(work: Path, archive: Path, cap: int, tag: str) -> dict[str, Any]:
    from tests.benchmarks.makespan import run_barrier

    return run_barrier(archive, work / f"out-barrier-{tag}", cap, instruments=["PN", "M1", "M2"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.three_cases", description=__doc__.splitlines()[0])
    ap.add_argument("--straggler-at", type=int, nargs="*", default=[0, -1],
                    help="which of the observations that have a PN chain is slow, by position (default 0 -1: "
                         "the first and the last; one straggler case each)")
    ap.add_argument("--skip-barrier", action="store_true", help="only the flow")
    ap.add_argument("--daxa-python", help="a Python with DAXA 0.3.7 installed (tests/benchmarks/daxa_run.py says how): "
                                          "DAXA itself runs each case too, after the flow")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every sleep (default 1; the smoke test: 0)")
    ap.add_argument("--first", type=int, help="run only the first N cases")
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="where three_cases.json goes")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    ns = ap.parse_args(argv)

    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-three-"))
    setup_env(work, fast=True)
    os.environ.pop("DAXA_STANDIN_FAULTS", None)
    durations = {task: s * ns.scale for task, s in DURATIONS.items()}
    extra_s = STRAGGLER_EXTRA_S * ns.scale
    os.environ["DAXA_STANDIN_DURATIONS"] = json.dumps(durations)
    from daxa_xmm.standin.synth import write_archive

    archive = work / "archive"
    obsids = write_archive(archive, 3, mix="demo")
    (work / "config.yaml").write_text(CONFIG)
    cases: list[tuple[str, int, int | None]] = [("2 slots", 2, None), ("4 slots", 4, None)]
    cases += [(f"4 slots, one epchain +{extra_s:g} s per call", 4, i) for i in ns.straggler_at]
    cases = cases[:ns.first]
    with_pn: list[str] = []  # the observations with a PN chain, from the first run
    result: dict[str, Any] = {
        "benchmark": "three_cases", "machine": machine_info(),
        "command": " ".join(["python -m tests.benchmarks.three_cases", *(argv if argv is not None else sys.argv[1:])]),
        "durations_s": durations, "straggler_extra_s": extra_s, "config": CONFIG, "obsids": obsids, "cases": [],
    }
    try:
        for i, (name, cap, position) in enumerate(cases):
            slow = None if position is None else with_pn[position]
            faults = [] if slow is None else [{"task": "epchain", "match": slow, "action": "sleep",
                                               "seconds": extra_s}]
            os.environ["DAXA_STANDIN_FAULTS"] = json.dumps(faults)
            row: dict[str, Any] = {"case": name, "slots": cap, "straggler": slow, "flow": _flow(work, archive, cap, str(i))}
            with_pn = with_pn or row["flow"]["epchain_obsids"]
            if ns.daxa_python:
                row["daxa"] = _daxa(work, archive, cap, str(i), ns.daxa_python)
                row["flow_over_daxa_whole"] = row["flow"]["whole_command_s"] / row["daxa"]["whole_command_s"]
                row["flow_over_daxa_span"] = row["flow"]["sas_span_s"] / row["daxa"]["sas_span_s"]
            if not ns.skip_barrier:
                row["barrier"] = _barrier(work, archive, cap, str(i))
                row["barrier_over_flow_whole"] = row["barrier"]["wall_s"] / row["flow"]["whole_command_s"]
            result["cases"].append(row)
            f = row["flow"]
            print(f"{name}{f' ({slow})' if slow else ''}: command {f['whole_command_s']:.1f} s, first SAS call at {f['first_call_s']:.2f} s, "
                  f"SAS span {f['sas_span_s']:.1f} s / lower bound {f['lower_bound']['lower_bound_s']:.1f} s = "
                  f"{f['ratio_span_to_lb']:.3f}" + (f"; barrier {row['barrier']['wall_s']:.1f} s" if "barrier" in row else "")
                  + (f"; DAXA: command {row['daxa']['whole_command_s']:.1f} s, first SAS call at "
                     f"{row['daxa']['first_call_s']:.2f} s, SAS span {row['daxa']['sas_span_s']:.1f} s"
                     if "daxa" in row else ""),
                  flush=True)
    finally:
        write_result(ns.out / "three_cases.json", result)
    print(f"wrote {ns.out / 'three_cases.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
