"""Prefect with many Dask workers writing at once: slot idle per SAS call and API errors.

Run (from the repository root)::

    python -m tests.benchmarks.cluster --n 100 --workers 4 [--cap 1] [--threads 2] \\
        [--db-url postgresql+asyncpg://...] [--tag postgres] [--out DIR]

What runs, as on a cluster (issue 32.4): a Prefect server of its own (``prefect server
start``'s app and services, uvicorn's access log on), on PostgreSQL with ``--db-url`` (make
one with ``python -m deployments.postgres start``) or on SQLite; a ``dask scheduler`` and
``--workers`` ``dask worker`` processes, each a "node" with its own SAS stand-in, slot
folder (``--cap`` = ``num_cores`` per node) and call log (tests/cluster/nodes.py), every
one of them writing task runs to the server; the archive flow on them with
``dask_address``. All the processes are on this one machine, so the nodes share its cores.

Measured:

- ``slot_idle_per_call_s`` per node and over all: ``(cap * span - sum(process wall)) /
  calls`` of that node's calls (BENCHMARKS.md section 2's definition, per node);
- the server's answers by HTTP status (from its access log), and those not 2xx by route:
  every 5xx is an API error a client met (a 422 of ``GET /api/csrf-token`` is each client's
  one probe of a server whose CSRF protection is off, Prefect's default); ``orchestration_retries``: the steps and observations daxa-xmm started again
  because Prefect failed to run them (the workers' "Prefect failed to run it" warnings);
- observations not ok, calls per second, the SAS span.

With ``DAXA_XMM_TEST_PREFECT_API_URL`` set (the smoke test) it uses that server instead and
reports no server figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: python tests/benchmarks/cluster.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks._common import load_records, machine_info, setup_env, write_result
from tests.cluster.nodes import DaskProcesses, Node, kill_tree, make_node, write_json
from tests.shared_server import free_port, wait_healthy

_STATUS = re.compile(r'HTTP/[\d.]+" (\d{3})')
_ANSWER = re.compile(r'"([A-Z]+) ([^ ?"]+)[^"]* HTTP/[\d.]+" (\d{3})')
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _not_2xx(log: str) -> dict[str, int]:
    """The server's answers other than 2xx by status, method and route (ids as ``ID``): which
    requests they were, so an error is told from a probe (Prefect's client asks each new
    server for a CSRF token, and a server with CSRF protection off answers 422)."""
    seen = Counter(f"{code} {method} {_ID.sub('ID', path)}" for method, path, code in _ANSWER.findall(log)
                   if not code.startswith("2"))
    return dict(sorted(seen.items()))


def _start_server(work: Path, db_url: str | None) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``prefect server start``'s app with its services, on ``db_url`` or SQLite, access log on."""
    home = work / "server-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DAXA_", "SAS_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_LOGGING_LEVEL="INFO",  # uvicorn's access log: every answer and its status
               PREFECT_SERVER_DATABASE_CONNECTION_URL=db_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}")
    log = home / "server.log"
    proc = subprocess.Popen(  # noqa: S603 - argv list
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "info", "--access-log", "--lifespan", "on"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=home, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    wait_healthy(url, timeout_s=180)
    return proc, url, log


def _slot_idle(calls: list[dict[str, Any]], cap: int) -> dict[str, Any]:
    """Span, calls and slot idle per call of one node's calls (rows of ``load_records``)."""
    if not calls:
        return {"calls": 0}
    span = max(c["end"] for c in calls) - min(c["start"] for c in calls)
    proc = sum(c["proc_s"] for c in calls)
    return {"calls": len(calls), "span_s": span, "sum_process_wall_s": proc, "cap": cap,
            "idle_s": cap * span - proc, "slot_idle_per_call_s": (cap * span - proc) / len(calls),
            "observations": len({c["obsid"] for c in calls})}


def _measure(work: Path, nodes: list[Node], procs: DaskProcesses, cap: int) -> dict[str, Any]:
    per_node = {}
    for node in nodes:
        rows = [r for r in load_records(work / "out", node.call_log) if r["start"] is not None]
        per_node[node.name] = _slot_idle(rows, cap)
    busy = [v for v in per_node.values() if v["calls"]]
    calls = sum(v["calls"] for v in busy)
    retries = sum(procs.log(n.name).count("Prefect failed to run it") for n in nodes)
    return {
        "nodes": per_node, "calls": calls,
        "slot_idle_per_call_s": sum(v["idle_s"] for v in busy) / calls if calls else None,
        "orchestration_retries": retries,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.cluster", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="observations (default 100)")
    ap.add_argument("--workers", type=int, default=4, help="dask worker processes, each a node (default 4)")
    ap.add_argument("--cap", type=int, default=1, help="num_cores: SAS processes at once per node (default 1)")
    ap.add_argument("--threads", type=int, default=2, help="observations at once per worker (default 2)")
    ap.add_argument("--instruments", nargs="+", default=["PN"], help="instruments (default PN: 9 calls per observation)")
    ap.add_argument("--db-url", help="the server's database (default: SQLite in the work folder)")
    ap.add_argument("--tag", default="", help="suffix of the result file name (e.g. postgres)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ap.add_argument("--work", type=Path)
    ns = ap.parse_args(argv)

    work = ns.work or Path(tempfile.mkdtemp(prefix="daxa-bench-cluster-"))
    env = setup_env(work, fast=True)  # the flow's process: the "login node"
    server, server_log = None, None
    if "PREFECT_API_URL" not in env:
        server, url, server_log = _start_server(work, ns.db_url)
        os.environ["PREFECT_API_URL"] = url
    from daxa_xmm.config import ProcessingConfig
    from daxa_xmm.standin.synth import write_archive

    write_archive(work / "archive", ns.n, mix="standard")
    write_json(work / "faults.json", [])
    nodes = [make_node(work, f"node-{i}") for i in range(ns.workers)]
    name = f"cluster-{ns.n}-{ns.workers}w{'-' + ns.tag if ns.tag else ''}.json"
    result: dict[str, Any] = {
        "benchmark": "cluster", "machine": machine_info(),
        "command": " ".join(["python -m tests.benchmarks.cluster", *(argv if argv is not None else sys.argv[1:])]),
        "n_observations": ns.n, "workers": ns.workers, "cap_per_node": ns.cap, "threads_per_worker": ns.threads,
        "instruments": ns.instruments, "database": "postgresql" if ns.db_url else "sqlite",
        "server": "own" if server else "caller's", "stand_in_fast_mode": True,
    }
    procs = DaskProcesses(work)
    try:
        procs.start(nodes, work, PREFECT_API_URL=os.environ["PREFECT_API_URL"], PREFECT_LOGGING_LEVEL="WARNING",
                    DASK_LOGGING__DISTRIBUTED="warning", threads=ns.threads)
        from flows.process_archive import run_archive

        t0 = time.time()
        res = run_archive(ProcessingConfig(archive=work / "archive", out=work / "out", num_cores=ns.cap, retries=0,
                                           disable_progress=True, instruments=ns.instruments, task_runner="dask",
                                           dask_address=procs.address, images={"bands": [["0.5 keV", "2.0 keV"]]}))
        result["wall_s"] = time.time() - t0
        result["counts"] = res["counts"]
        result["not_ok"] = [{"obsid": o["obsid"], "status": o["status"], "message": o.get("message", "")}
                            for o in res["observations"] if o["status"] != "ok"][:20]
        result.update(_measure(work, nodes, procs, ns.cap))
        spans = [v for v in result["nodes"].values() if v["calls"]]
        result["calls_per_s"] = result["calls"] / max(v["span_s"] for v in spans) if spans else None
        if server_log is not None:
            statuses = Counter(_STATUS.findall(server_log.read_text(errors="replace")))
            result["server_answers"] = dict(sorted(statuses.items()))
            result["server_answers_not_2xx"] = _not_2xx(server_log.read_text(errors="replace"))
            result["api_errors_5xx"] = sum(n for code, n in statuses.items() if code.startswith("5"))
        idle = result["slot_idle_per_call_s"]
        print(f"n={ns.n}, {ns.workers} workers: {result['counts']}, {result['calls']} calls; slot idle "
              f"{(idle or 0) * 1000:.1f} ms/call; 5xx {result.get('api_errors_5xx')}; retries {result['orchestration_retries']}",
              flush=True)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        procs.stop()
        if server is not None:
            kill_tree(server)
        write_result(ns.out / name, result)
        if ns.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {ns.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
