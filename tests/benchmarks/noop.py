"""No-op re-run: how long the whole command takes when nothing is left to do.

For each archive size: make a synthetic archive (standard mix), process it once with the
fast stand-in (PN, one band), then time ``python -m flows.process_archive`` again, as a user
runs it, twice, and the plan-first check alone (:func:`daxa_xmm.pipeline.uptodate.finished_observations`)
in this process. Run: ``python -m tests.benchmarks.noop --n 10 100``; ``--existing DIR`` times only the no-op
re-run of a run already finished in DIR (2,000 observations take most of an hour to process).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmarks._common import machine_info, setup_env, write_result

REPO = Path(__file__).resolve().parents[2]


def _command(archive: Path, out: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out), "--config", str(config),
            "--instruments", "PN", "--num-cores", "2", "--no-progress"]


def _one(n: int | None, work: Path) -> dict[str, Any]:
    """``n`` new observations in ``work``, processed once first; None: ``work`` holds a
    finished run already (``archive/``, ``out/``, ``sas/``, as ``overhead.py --work`` leaves)."""
    setup_env(work, fast=True)
    from daxa_xmm.config import load_config
    from daxa_xmm.layout import ArchiveLayout
    from daxa_xmm.pipeline.uptodate import finished_observations
    from daxa_xmm.sas.environment import detect_sas
    from daxa_xmm.standin.synth import write_archive

    archive, out, config = work / "archive", work / "out", work / "config.yaml"
    config.write_text("images:\n  bands: [['0.5 keV', '2.0 keV']]\nretries: 0\n")
    cmd = _command(archive, out, config)
    first_s = None
    if n is None:
        obsids = sorted(d.name for d in archive.iterdir() if d.name.isdigit())
        n = len(obsids)
    else:
        obsids = write_archive(archive, n, mix="standard")
        t = time.time()
        first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
        first_s = time.time() - t
        if first.returncode != 0:
            raise RuntimeError(f"first run failed:\n{first.stdout}\n{first.stderr}")
    again = []
    for _ in range(2):
        t = time.time()
        run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)  # noqa: S603
        again.append(time.time() - t)
        if run.returncode != 0 or f"{n} ok" not in run.stdout:
            raise RuntimeError(f"no-op run failed:\n{run.stdout}\n{run.stderr}")
    cfg = load_config(config, archive=archive, out=out, instruments=["PN"])
    t = time.time()
    done = finished_observations(ArchiveLayout(archive, out), obsids, cfg, detect_sas().version.raw)
    check_s = time.time() - t
    assert len(done) == n, f"only {len(done)} of {n} found finished"
    return {"n": n, "first_run_s": first_s, "noop_command_s": again, "check_s": check_s,
            "check_per_observation_ms": 1000 * check_s / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.noop", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100], help="archive sizes (default 10 100)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--work", type=Path, help="keep the work folders here (default: temporary, removed)")
    ap.add_argument("--existing", type=Path, help="instead: time only the no-op re-run of the finished run in this "
                    "folder, e.g. an 'overhead.py --instruments PN --one-band --work DIR' run of 2,000 observations")
    ns = ap.parse_args(argv)
    result: dict[str, Any] = {"benchmark": "noop", "machine": machine_info(),
                              "command": " ".join(["python -m tests.benchmarks.noop", *(argv if argv is not None else sys.argv[1:])]),
                              "sizes": []}
    sizes: list[int | None] = [None] if ns.existing else list(ns.n)
    for n in sizes:
        if ns.existing:
            work = ns.existing
        else:
            work = ns.work / f"noop-{n}" if ns.work else Path(tempfile.mkdtemp(prefix=f"daxa-bench-noop-{n}-"))
        try:
            row = _one(n, work)
        finally:
            if ns.work is None and ns.existing is None:
                shutil.rmtree(work, ignore_errors=True)
        first = "done before" if row["first_run_s"] is None else f"{row['first_run_s']:.1f} s"
        print(f"n={row['n']}: first run {first}; no-op command {', '.join(f'{s:.2f}' for s in row['noop_command_s'])} s; "
              f"check {row['check_s']:.2f} s ({row['check_per_observation_ms']:.1f} ms/observation)", flush=True)
        result["sizes"].append(row)
    write_result(ns.out / "noop.json", result)
    print(f"wrote {ns.out / 'noop.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
