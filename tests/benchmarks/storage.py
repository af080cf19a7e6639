"""Bytes per observation that each storage policy keeps (``--storage all|products|final``).

Runs the demo archive (``python -m flows.process_archive --demo``, the realistic stand-in)
once per policy, each into its own products folder, then runs ``final`` again over the
``all`` folder (a leaner re-run: it should free the same bytes and make no SAS call). Each
products folder is measured per observation, with what its biggest folders hold.

Run (from the repository root): ``python -m tests.benchmarks.storage [--work DIR] [--out DIR]``;
the result file is ``<out>/storage.json``. The demo's products are synthetic and small (its
event lists hold thousands of events, real ones millions): read the fractions, not the
megabytes, as what a real archive saves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/storage.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import dir_size, machine_info, write_result

REPO = Path(__file__).resolve().parents[2]
POLICIES = ("all", "products", "final")


def _run(base: Path, out: Path, policy: str) -> None:
    cmd = [sys.executable, "-m", "flows.process_archive", str(base), "--demo", "--out", str(out),
           "--storage", policy, "--no-progress"]
    env = {**os.environ, "DAXA_STANDIN_LOG": str(base / "calls.jsonl")}  # to count the SAS calls
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def _calls(base: Path) -> int:
    """The processing calls logged so far (``sasversion``, which every run asks, is not one)."""
    log = base / "calls.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if json.loads(line).get("task") != "sasversion")


def _measure(out: Path) -> dict[str, Any]:
    obs = sorted(p for p in out.iterdir() if p.is_dir() and p.name.isdigit())
    per = {p.name: dir_size(p) for p in obs}
    folders: dict[str, int] = {}
    for p in obs:
        for sub in p.iterdir():
            folders[sub.name] = folders.get(sub.name, 0) + (dir_size(sub) if sub.is_dir() else sub.stat().st_size)
    return {"bytes_per_observation": round(sum(per.values()) / len(per)), "by_observation": per,
            "by_folder_mean": {k: round(v / len(obs)) for k, v in sorted(folders.items(), key=lambda kv: -kv[1])}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=None, help="folder for the demo archive and products (default: temporary)")
    p.add_argument("--out", type=Path, default=REPO / "tests" / "benchmarks" / "results")
    args = p.parse_args(argv)
    base = (args.work or Path(tempfile.mkdtemp(prefix="daxa-storage-"))).absolute()
    result: dict[str, Any] = {"machine": machine_info(), "command": "python -m tests.benchmarks.storage", "policies": {}}
    for policy in POLICIES:
        _run(base, base / f"processed-{policy}", policy)
        result["policies"][policy] = _measure(base / f"processed-{policy}")
    before = _calls(base)
    _run(base, base / "processed-all", "final")  # the leaner re-run over a finished folder
    result["leaner_rerun"] = {"sas_calls": _calls(base) - before, **_measure(base / "processed-all")}
    full = result["policies"]["all"]["bytes_per_observation"]
    for policy in POLICIES:
        kept = result["policies"][policy]["bytes_per_observation"]
        result["policies"][policy]["fraction_of_all"] = round(kept / full, 3)
    write_result(args.out / "storage.json", result)
    for policy in POLICIES:
        got = result["policies"][policy]
        print(f"{policy:9s} {got['bytes_per_observation'] / 1e6:7.2f} MB/observation ({got['fraction_of_all']:.0%} of all)")
    print(f"final over all: {result['leaner_rerun']['bytes_per_observation'] / 1e6:7.2f} MB/observation, "
          f"{result['leaner_rerun']['sas_calls']} SAS call(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
