"""Orchestration overhead per SAS call, peak memory and Prefect database size at scale.

Run (from the repository root): ``python -m tests.benchmarks.overhead --n 100 [--cap 2]
[--obs-concurrency 8] [--instruments PN] [--one-band] [--db-url postgresql+asyncpg://...]
[--tag postgres] [--out DIR]``. One size per process (peak memory only
grows), so run it once per size; the result file is ``<out>/overhead-<n>[-<tag>].json``.

The archive's observations are all 'standard' (PN, MOS1, MOS2, RGS1, RGS2, one
sub-exposure each: 33 SAS calls per observation with the default instruments and two image
bands; ``--instruments PN --one-band`` makes it 9, to fit larger archives into the CPU of a
small machine). The
stand-in runs in fast mode with no simulated duration, so what is measured is the flow:

- ``overhead_per_call_s``: wall time of the flow beyond the stand-in processes' own time,
  per call: ``(wall - sum(stand-in self time) / cap) / calls``. ``wall`` is measured from
  the first SAS call to the last (Prefect's start-up and the report come apart, below).
- ``slot_idle_per_call_s``: ``(cap * span - sum(process wall)) / calls``, how long a SAS
  slot stays empty between two calls (process start-up excluded).
- ``flow_cpu_per_call_s``: CPU time of the flow process per call: the ceiling on calls per
  second one flow process can drive, whatever the number of cores.
- ``report_s``: the report at the run's end (quick-looks, report.json, report.html,
  exposures.csv and the summary artifact), from the last observation's end.
- peak RSS (VmHWM) of the flow process and of Prefect's temporary server process, and the
  size of ``PREFECT_HOME`` (the SQLite database) afterwards; none of the server's figures
  when it runs on a server of its caller's (``DAXA_XMM_TEST_PREFECT_API_URL``: the smoke test).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/overhead.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import (
    descendant_hwm_mb,
    dir_size,
    load_records,
    machine_info,
    peak_rss_mb,
    setup_env,
    write_result,
)


class _ServerWatch(threading.Thread):
    """Samples the temporary Prefect server's peak memory and CPU time while the flow runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.hwm_mb = 0.0
        self.cpu_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self.stop.wait(1.0):
            for pid, hwm in descendant_hwm_mb("uvicorn").items():
                self.hwm_mb = max(self.hwm_mb, hwm)
                try:
                    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    self.cpu_s = max(self.cpu_s, (int(f[11]) + int(f[12])) / tick)
                except (OSError, ValueError, IndexError):
                    pass


def _pg_size(url: str) -> int | None:
    """``pg_database_size`` of the database ``url`` names (None if it cannot be asked)."""
    import asyncio

    try:
        import asyncpg
    except ImportError:
        return None
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)

    async def ask() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("select pg_database_size(current_database())"))
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except Exception:  # noqa: BLE001
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="observations (default 100)")
    ap.add_argument("--cap", type=int, default=2, help="max SAS processes at once (num_cores; default 2)")
    ap.add_argument("--obs-concurrency", type=int, default=8, help="observations at once (default 8)")
    ap.add_argument("--instruments", nargs="+", default=["PN", "M1", "M2", "R1", "R2"],
                    help="instruments to process (PN alone: 9 calls per observation with --one-band)")
    ap.add_argument("--one-band", action="store_true", help="one image band instead of the default two")
    ap.add_argument("--db-url", help="Prefect server database URL (default: SQLite under the work folder)")
    ap.add_argument("--tag", default="", help="suffix of the result file name (e.g. postgres)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--work", type=Path)
    ns = ap.parse_args(argv)

    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-overhead-"))
    env = setup_env(work, fast=True, prefect_db_url=ns.db_url)
    own_server = "PREFECT_API_URL" not in env
    from daxa_xmm.config import ProcessingConfig
    from daxa_xmm.standin.synth import write_archive

    archive = work / "archive"
    t = time.time()
    write_archive(archive, ns.n, mix="standard")
    synth_s = time.time() - t
    name = f"overhead-{ns.n}{'-' + ns.tag if ns.tag else ''}.json"
    result: dict[str, Any] = {
        "benchmark": "overhead", "machine": machine_info(),
        "command": " ".join(["python -m tests.benchmarks.overhead", *(argv if argv is not None else sys.argv[1:])]),
        "n_observations": ns.n, "cap": ns.cap, "obs_concurrency": ns.obs_concurrency,
        "database": "postgresql" if ns.db_url else "sqlite", "instruments": ns.instruments, "one_band": ns.one_band,
        "stand_in_fast_mode": True, "synth_s": synth_s,
    }
    watch = _ServerWatch()
    watch.start()
    try:
        import prefect  # noqa: F401  (its import cost is not the flow's)

        import flows.process_archive as pa
        from flows.process_archive import run_archive

        publish, report_s = pa._publish, []

        def timed_publish(*a: Any, **k: Any) -> str:  # the report at the run's end, timed
            t = time.time()
            try:
                return publish(*a, **k)
            finally:
                report_s.append(time.time() - t)

        pa._publish = timed_publish  # type: ignore[assignment]
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.time()
        config = ProcessingConfig(archive=archive, out=work / "out", num_cores=ns.cap,
                                  obs_concurrency=ns.obs_concurrency, retries=0, disable_progress=True,
                                  instruments=ns.instruments,
                                  **({"images": {"bands": [["0.5 keV", "2.0 keV"]]}} if ns.one_band else {}))
        res = run_archive(config)
        wall = time.time() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        watch.stop.set()
        watch.join()
        rows = load_records(work / "out", Path(env["DAXA_STANDIN_LOG"]))
        n = len(rows)
        starts = [r["start"] for r in rows if r["start"]]
        ends = [r["end"] for r in rows if r["end"]]
        span = max(ends) - min(starts)
        self_sum = sum(r["self_s"] for r in rows)
        proc_sum = sum(r["proc_s"] for r in rows)
        flow_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        result.update({
            "counts": res["counts"],
            "failures": [{"obsid": o["obsid"], "status": o["status"], "message": o.get("message", ""), "failed": o.get("failed", [])}
                         for o in res["observations"] if o["status"] != "ok"][:20],
            "calls": n, "calls_per_observation": n / ns.n,
            "wall_s": wall, "sas_span_s": span, "startup_and_report_s": wall - span,
            "sum_standin_self_s": self_sum, "sum_process_wall_s": proc_sum,
            "overhead_per_call_s": (span - self_sum / ns.cap) / n,
            "slot_idle_per_call_s": (ns.cap * span - proc_sum) / n,
            "flow_cpu_s": flow_cpu, "flow_cpu_per_call_s": flow_cpu / n,
            "calls_per_s": n / span,
            "report_s": report_s[0] if report_s else None,
            "peak_rss_flow_mb": peak_rss_mb(),
            "peak_rss_server_mb": watch.hwm_mb or None, "server_cpu_s": watch.cpu_s or None,
            "prefect_home_bytes": dir_size(work / "prefect-home") if own_server else None,
            "prefect_db_bytes_per_observation": dir_size(work / "prefect-home") / ns.n if own_server else None,
            "products_bytes": dir_size(work / "out"),
        })
        if ns.db_url:
            size = _pg_size(ns.db_url)
            result["postgres_db_bytes"] = size
            result["prefect_db_bytes_per_observation"] = size / ns.n if size else None
        print(f"n={ns.n}: {n} calls in {span:.1f} s (wall {wall:.1f} s); overhead {result['overhead_per_call_s'] * 1000:.1f} ms/call, "
              f"flow CPU {result['flow_cpu_per_call_s'] * 1000:.1f} ms/call; peak RSS flow {result['peak_rss_flow_mb']:.0f} MB, "
              f"server {result['peak_rss_server_mb']} MB; PREFECT_HOME {(result['prefect_home_bytes'] or 0) / 1e6:.1f} MB", flush=True)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        write_result(ns.out / name, result)
        if ns.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {ns.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
