"""Makespan of the archive flow against its lower bound, and against DAXA's stage barriers.

Run: ``python -m tests.benchmarks.makespan [--n 40] [--cap 4] [--scale 0.6] [--out DIR]``.

An emulated archive of ``n`` observations (most with one PN and one MOS1 sub-exposure, every
tenth with three PN sub-exposures), processed with the SAS stand-in whose tasks sleep for a
realistic spread of durations (``DAXA_STANDIN_DURATIONS``; epchain and emchain longest),
scaled so the whole benchmark fits in minutes. The stand-in runs in fast mode (no astropy,
placeholder products), so each call's ~40 ms start-up is small beside its sleep; on a
2-core machine ``cap`` concurrent normal stand-in calls would be CPU-bound instead.

Three runs, in one process, on the same archive:

1. ``flow``: the product (``run_archive``), at most ``cap`` SAS processes at once. The
   lower bound max(critical path, total work / cap) is computed from the stand-in's call
   log (its own start-to-end time per call) and the flow's structure; goal <= 1.10x.
2. ``flow_straggler``: the same with one observation's epchain ten times longer.
3. ``barrier_straggler``: a baseline in this file (not in the product): step by step over
   the whole archive, ``cap`` calls at once, a barrier after each step, as DAXA runs, using
   the core builders and :func:`daxa_xmm.sas.runner.run_sas`. Goal: the flow >= 1.4x faster.

Writes ``<out>/makespan.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/makespan.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import load_records, lower_bound, machine_info, setup_env, write_result

#: Seconds per call at scale 1 (a [min, max] range is spread deterministically per unit).
#: Real SAS: epchain 10-30 min, emchain 5-15 min, espfilt/eexpmap ~1 min, evselect ~30 s.
DURATIONS: dict[str, Any] = {
    "cifbuild": 0.5, "odfingest": 0.5,
    "epchain": [4.0, 8.0], "emchain": [3.0, 6.0], "emanom": 0.3,
    "espfilt": [0.8, 1.2], "evselect": [0.3, 0.6], "merge": 0.4, "eexpmap": [0.6, 1.0],
}
INSTRUMENTS = ["PN", "M1"]
BANDS = [["0.5 keV", "2.0 keV"]]


def scaled(scale: float) -> dict[str, Any]:
    return {k: ([v[0] * scale, v[1] * scale] if isinstance(v, list) else v * scale) for k, v in DURATIONS.items()}


def make_archive(root: Path, n: int) -> list[str]:
    """n observations: every tenth 'multi_pn' (3 PN sub-exposures), the others 'standard'."""
    import random

    from daxa_xmm.standin.synth import spec_for, write_odf

    rng = random.Random(0)
    obsids = []
    for i in range(n):
        obsid = f"{100000001 + i:010d}"
        write_odf(root, obsid, spec_for("multi_pn" if i % 10 == 9 else "standard", i, rng))
        obsids.append(obsid)
    return obsids


def _config(archive: Path, out: Path, cap: int, obs_concurrency: int | None,  # type: ignore[no-untyped-def]
            instruments: list[str] = INSTRUMENTS):
    from daxa_xmm.config import ProcessingConfig

    return ProcessingConfig(archive=archive, out=out, num_cores=cap, obs_concurrency=obs_concurrency,
                            instruments=instruments, images={"bands": BANDS}, retries=0, disable_progress=True)


def run_flow(archive: Path, out: Path, cap: int, obs_concurrency: int | None, call_log: Path) -> dict[str, Any]:
    from flows.process_archive import run_archive

    call_log.unlink(missing_ok=True)
    if out.exists():
        shutil.rmtree(out)
    t0 = time.time()
    result = run_archive(_config(archive, out, cap, obs_concurrency))
    wall = time.time() - t0
    rows = load_records(out, call_log)
    starts = [r["start"] for r in rows if r["start"]]
    ends = [r["end"] for r in rows if r["end"]]
    span = max(ends) - min(starts)  # first SAS call start to last SAS call end
    lb = lower_bound(rows, cap, "self_s")
    lb_proc = lower_bound(rows, cap, "proc_s")
    return {
        "counts": result["counts"], "calls": len(rows), "wall_s": wall, "sas_span_s": span,
        "lower_bound": lb, "ratio_span_to_lb": span / lb["lower_bound_s"],
        "lower_bound_with_process_startup": lb_proc, "ratio_span_to_lb_with_startup": span / lb_proc["lower_bound_s"],
    }


# --------------------------------------------------------------------------- barrier baseline
def run_barrier(archive: Path, out: Path, cap: int, instruments: list[str] = INSTRUMENTS) -> dict[str, Any]:
    """Step by step over the whole archive, a barrier after each step (DAXA's schedule)."""
    from daxa_xmm.config import ProcessingConfig
    from daxa_xmm.layout import ArchiveLayout
    from daxa_xmm.odf.selection import select_units
    from daxa_xmm.odf.summary import read_observation_record, read_odf_summary
    from daxa_xmm.sas.environment import detect_sas
    from daxa_xmm.sas.placement import place
    from daxa_xmm.sas.runner import raise_for_result, run_sas
    from daxa_xmm.steps.cifbuild import CifBuildConfig, cifbuild_calls
    from daxa_xmm.steps.clean_events import clean_events_calls
    from daxa_xmm.steps.emanom import emanom_calls
    from daxa_xmm.steps.emchain import emchain_calls
    from daxa_xmm.steps.epchain import epchain_calls
    from daxa_xmm.steps.espfilt import espfilt_calls
    from daxa_xmm.steps.images import image_expmap_calls
    from daxa_xmm.steps.merge import merge_calls

    if out.exists():
        shutil.rmtree(out)
    cfg: ProcessingConfig = _config(archive, out, cap, None, instruments)
    layout = ArchiveLayout(archive, out)
    sasv = detect_sas().version
    timeout = cfg.timeout_s()
    obsids = layout.obsids()
    n_calls = 0
    stage_s: dict[str, float] = {}

    def run_jobs(name: str, jobs: list[list[Any]]) -> None:
        """One stage: each job is a list of calls run in order; all jobs done before returning."""
        nonlocal n_calls
        t = time.time()

        def one(calls: list[Any]) -> None:
            for c in calls:
                raise_for_result(place(c) if c.placed_from else run_sas(c, log_dir=layout.logs_dir(c.obsid)))

        with ThreadPoolExecutor(max_workers=cap) as pool:
            list(pool.map(one, jobs))
        n_calls += sum(len(j) for j in jobs)
        stage_s[name] = time.time() - t

    t0 = time.time()
    records = {o: read_observation_record(layout.odf_sum_asc(o)) for o in obsids}
    run_jobs("cif_build", [cifbuild_calls(layout, o, records[o].start, cfg.section(CifBuildConfig), timeout) for o in obsids])
    run_jobs("odf_ingest", [odfingest_calls_for(layout, o, records[o].revolution, timeout) for o in obsids])
    summaries = {o: layout.summary(o, records[o].revolution) for o in obsids}
    units = {o: select_units(read_odf_summary(summaries[o], obs_id=o), instruments=tuple(cfg.instruments),
                             process_unscheduled=cfg.process_unscheduled) for o in obsids}
    allu = [(o, u) for o in obsids for u in units[o]]
    pn = [(o, u) for o, u in allu if u.inst == "PN"]
    mos = [(o, u) for o, u in allu if u.inst in ("M1", "M2")]
    run_jobs("epchain", [epchain_calls(layout, u, summaries[o], sasv, timeout) for o, u in pn])
    run_jobs("emchain", [emchain_calls(layout, u, summaries[o], timeout) for o, u in mos])
    run_jobs("emanom", [emanom_calls(layout, u, sasv, timeout) for o, u in mos])
    run_jobs("espfilt", [espfilt_calls(layout, u, cfg.espfilt, sasv, timeout) for o, u in pn + mos])
    clean = cfg.clean
    run_jobs("cleaned_evt_lists", [clean_events_calls(layout, u, clean, None, timeout) for o, u in pn + mos])
    merges = []
    for o in obsids:
        for inst in sorted({u.inst for u in units[o]}):
            us = [u for u in units[o] if u.inst == inst]
            for kind, oot in (("clean", False), ("clean_oot", True)):
                if oot and inst != "PN":
                    continue
                plan = merge_calls(layout, o, f"{o}{inst}-{kind}", [layout.clean_events(o, inst, u.exp_id, oot=oot) for u in us],
                                   layout.merged_events(o, inst, kind), timeout)
                merges.append(list(plan.calls))
    run_jobs("merge_subexposures", merges)
    images = []
    for o in obsids:
        for inst in sorted({u.inst for u in units[o]}):
            for lo, hi in cfg.images.bands_ev():
                images.append(image_expmap_calls(layout, o, inst, lo, hi, cfg.images, timeout))
    run_jobs("generate_images_expmaps", images)
    return {"wall_s": time.time() - t0, "calls": n_calls, "stage_s": stage_s}


def odfingest_calls_for(layout, obsid, revolution, timeout):  # type: ignore[no-untyped-def]
    from daxa_xmm.steps.odfingest import odfingest_calls

    return odfingest_calls(layout, obsid, revolution, timeout)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.makespan", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="observations (default 40)")
    ap.add_argument("--cap", type=int, default=4, help="max SAS processes at once (num_cores; default 4)")
    ap.add_argument("--obs-concurrency", type=int, default=8, help="observations at once (default 8 = 2 x cap)")
    ap.add_argument("--scale", type=float, default=0.6, help="multiplies every stand-in duration (default 0.6)")
    ap.add_argument("--straggler-factor", type=float, default=10.0, help="the straggler's epchain is this many times longer")
    ap.add_argument("--skip", nargs="*", default=[], choices=["flow", "flow_straggler", "barrier_straggler"])
    ap.add_argument("--out", type=Path, default=Path("bench-results"), help="where makespan.json goes")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed after)")
    ns = ap.parse_args(argv)

    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-makespan-"))
    env = setup_env(work, fast=True)
    durations = scaled(ns.scale)
    os.environ["DAXA_STANDIN_DURATIONS"] = json.dumps(durations)
    archive = work / "archive"
    obsids = make_archive(archive, ns.n)
    call_log = Path(env["DAXA_STANDIN_LOG"])
    result: dict[str, Any] = {
        "benchmark": "makespan", "machine": machine_info(),
        "command": " ".join(["python -m tests.benchmarks.makespan", *(argv if argv is not None else sys.argv[1:])]),
        "n_observations": ns.n, "cap": ns.cap, "obs_concurrency": ns.obs_concurrency, "scale": ns.scale,
        "durations_s": durations, "instruments": INSTRUMENTS, "bands": BANDS, "stand_in_fast_mode": True,
    }
    try:
        if "flow" not in ns.skip:
            result["flow"] = run_flow(archive, work / "out-flow", ns.cap, ns.obs_concurrency, call_log)
            print(f"flow: span {result['flow']['sas_span_s']:.1f} s, lower bound {result['flow']['lower_bound']['lower_bound_s']:.1f} s, "
                  f"ratio {result['flow']['ratio_span_to_lb']:.3f}", flush=True)
        # The 20th observation of 40: a 'multi_pn' one (three PN sub-exposures, each epchain slow).
        straggler = obsids[max(len(obsids) // 2 - 1, 0)]
        extra = (ns.straggler_factor - 1) * (sum(DURATIONS["epchain"]) / 2) * ns.scale
        faults = [{"task": "epchain", "match": straggler, "action": "sleep", "seconds": extra}]
        os.environ["DAXA_STANDIN_FAULTS"] = json.dumps(faults)
        result["straggler"] = {"obsid": straggler, "extra_sleep_per_epchain_call_s": extra}
        if "flow_straggler" not in ns.skip:
            result["flow_straggler"] = run_flow(archive, work / "out-flow-straggler", ns.cap, ns.obs_concurrency, call_log)
            print(f"flow with straggler: span {result['flow_straggler']['sas_span_s']:.1f} s, "
                  f"ratio to lower bound {result['flow_straggler']['ratio_span_to_lb']:.3f}", flush=True)
        if "barrier_straggler" not in ns.skip:
            call_log.unlink(missing_ok=True)
            result["barrier_straggler"] = run_barrier(archive, work / "out-barrier", ns.cap)
            print(f"barrier with straggler: {result['barrier_straggler']['wall_s']:.1f} s", flush=True)
        if "flow_straggler" in result and "barrier_straggler" in result:
            result["speedup_vs_barrier"] = result["barrier_straggler"]["wall_s"] / result["flow_straggler"]["sas_span_s"]
            result["speedup_vs_barrier_flow_wall"] = result["barrier_straggler"]["wall_s"] / result["flow_straggler"]["wall_s"]
            print(f"speed-up over the barrier mode: {result['speedup_vs_barrier']:.2f}x "
                  f"(flow wall incl. Prefect start-up: {result['speedup_vs_barrier_flow_wall']:.2f}x)", flush=True)
    finally:
        write_result(ns.out / "makespan.json", result)
        if ns.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {ns.out / 'makespan.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
