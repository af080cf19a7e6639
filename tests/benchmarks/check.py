"""The plan-first check alone over a finished archive: wall and CPU time, optionally profiled.

What the nightly no-op re-run costs before its report: :func:`finished_observations` over
every observation of a finished run (an ``overhead.py --instruments PN --one-band --work
DIR`` run, grown with ``replicate.py --work DIR --n 15000``), in this process, after the
imports and ``sasversion``. Run: ``python -m tests.benchmarks.check --work DIR [--workers W]
[--tag T] [--profile 25] [--out DIR]``; the result file is ``<out>/check-<n>[-<tag>].json``
(CPU time counts the checking processes too), and with ``--profile K`` (one process) the K
functions of most cumulative time go beside it as ``.prof.txt``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/check.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import machine_info, setup_env, write_result


def _commit() -> str:
    """The checked-out commit of the code measured (``?`` outside a git work tree)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,  # noqa: S607
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _cpu_s() -> float:
    """CPU seconds of this process and of its ended children (the checking processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.check", description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder of a finished run: archive/, out/, config.yaml")
    ap.add_argument("--workers", type=int, help="checking processes (default: as the command chooses)")
    ap.add_argument("--profile", type=int, default=0, metavar="K", help="profile, and list the K costliest functions")
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ns = ap.parse_args(argv)
    setup_env(ns.work, fast=True)
    from daxa_xmm.config import load_config
    from daxa_xmm.layout import ArchiveLayout
    from daxa_xmm.pipeline.uptodate import finished_observations
    from daxa_xmm.sas.environment import detect_sas

    archive, out, config_file = ns.work / "archive", ns.work / "out", ns.work / "config.yaml"
    if not config_file.exists():  # noop.py's and replicate.py's settings
        config_file.write_text("images:\n  bands: [['0.5 keV', '2.0 keV']]\nretries: 0\n")
    config = load_config(config_file, archive=archive, out=out, instruments=["PN"])
    obsids = sorted(d.name for d in archive.iterdir() if d.name.isdigit())
    sas_version = detect_sas().version.raw
    machine = machine_info()
    prof = cProfile.Profile() if ns.profile else None
    workers = 1 if prof is not None else ns.workers
    load0, cpu0, t0 = os.getloadavg(), _cpu_s(), time.time()
    if prof is not None:
        prof.enable()
    done = finished_observations(ArchiveLayout(archive, out), obsids, config, sas_version, workers=workers)
    if prof is not None:
        prof.disable()
    wall, cpu = time.time() - t0, _cpu_s() - cpu0
    n = len(obsids)
    result: dict[str, Any] = {
        "benchmark": "check", "machine": machine, "commit": _commit(),
        "command": " ".join(["python -m tests.benchmarks.check", *(argv if argv is not None else sys.argv[1:])]),
        "n_observations": n, "workers": workers, "found_finished": len(done),
        "unfinished": sorted(set(obsids) - set(done)), "in_order": done == [o for o in obsids if o in set(done)],
        "profiled": bool(prof),
        "check_wall_s": wall, "check_cpu_s": cpu, "cpu_per_observation_ms": 1000 * cpu / n,
        "loadavg_before": load0, "loadavg_after": os.getloadavg(),
    }
    name = f"check-{n}{'-' + ns.tag if ns.tag else ''}"
    write_result(ns.out / f"{name}.json", result)
    if prof is not None:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(ns.profile)
        (ns.out / f"{name}.prof.txt").write_text(text.getvalue())
    print(f"{len(done)} of {n} finished; check {wall:.1f} s wall, {cpu:.1f} s CPU ({1000 * cpu / n:.2f} ms/observation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
