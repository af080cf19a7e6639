"""What the benchmarks share: the environment, the machine record, call-log analysis, results.

Each benchmark is a script run on its own (``python -m tests.benchmarks.<name>``); it sets
up a private work folder with the SAS stand-in on PATH, a private ``PREFECT_HOME`` (so the
size of Prefect's SQLite database is that run's alone) and its own slot folder, then writes
a JSON result file that BENCHMARKS.md quotes.
"""

from __future__ import annotations

__all__ = [
    "machine_info",
    "setup_env",
    "write_result",
    "load_records",
    "lower_bound",
    "dir_size",
    "peak_rss_mb",
    "descendant_hwm_mb",
]

import datetime as dt
import json
import os
import platform
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from daxa_xmm.standin.faults import read_call_log
from tests.conftest import PREFECT_API_VAR


def machine_info() -> dict[str, Any]:
    """nproc, memory, CPU model, Python and Prefect versions, date: the context of a number."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem_gb = round(kb / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    try:
        import prefect

        pv = prefect.__version__
    except Exception:  # noqa: BLE001
        pv = "?"
    return {
        "nproc": os.cpu_count(),
        "mem_gb": mem_gb,
        "cpu": model,
        "python": platform.python_version(),
        "prefect": pv,
        "loadavg_at_start": os.getloadavg(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def setup_env(work: Path, *, fast: bool = True, prefect_db_url: str | None = None) -> dict[str, str]:
    """Install the stand-in under ``work`` and point every setting of this process at ``work``.

    Must run before Prefect is imported: Prefect reads ``PREFECT_HOME`` at import.

    Args:
        work: the benchmark's private folder.
        fast: the stand-in's fast mode (placeholder outputs, no astropy; see
            :mod:`daxa_xmm.standin.fast`).
        prefect_db_url: a database URL for Prefect's (temporary, in-process) server;
            None keeps the default SQLite under ``work/prefect-home``.

    With ``DAXA_XMM_TEST_PREFECT_API_URL`` set (as the smoke tests set it to their
    session's server), the runs use that server and start no temporary one: the figures
    of Prefect's start-up and database are then not this run's.
    """
    from daxa_xmm.standin.install import install_standin
    from flows.cli import TEMPORARY_SERVER_SERVICES_OFF

    work.mkdir(parents=True, exist_ok=True)
    env = install_standin(work / "sas")
    env.update(
        DAXA_STANDIN_LOG=str(work / "calls.jsonl"),
        DAXA_STANDIN_STATE=str(work / "state"),
        DAXA_XMM_SLOTS_DIR=str(work / "slots"),
        PREFECT_HOME=str(work / "prefect-home"),
        **TEMPORARY_SERVER_SERVICES_OFF,  # as the CLI runs its temporary server
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_LOG_PRINTS="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",  # a fresh home on a busy machine
    )
    if fast:
        env["DAXA_STANDIN_FAST"] = "1"
    if prefect_db_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = prefect_db_url
    if external := os.environ.get(PREFECT_API_VAR):  # the smoke tests: their session's server
        env["PREFECT_API_URL"] = external
    for k in ("DAXA_STANDIN_FAULTS", "DAXA_STANDIN_DURATIONS", "PREFECT_API_URL"):
        os.environ.pop(k, None)
    os.environ.update(env)
    import logging

    # Fast-mode products are header-only placeholders: the report's quick-look pictures of
    # them fail by design, one warning each; not what a benchmark reader needs to see.
    logging.getLogger("daxa_xmm.report.quicklook").setLevel(logging.ERROR)
    return env


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as indented JSON, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def load_records(out_root: Path, call_log: Path) -> list[dict[str, Any]]:
    """Every SAS call of a flow run: unit and step from the manifests, times from both sides.

    Each row: ``obsid, unit, step, self_s`` (the stand-in's own start-to-end time, from the
    call log) and ``proc_s`` (the runner's process wall time, start-up included, from the
    manifest). Calls are joined on (cwd, argv).
    """
    log = {}
    for r in read_call_log(call_log):
        if r.get("end") is not None:
            log[(r["cwd"], tuple(r["argv"]))] = r
    rows = []
    for mf in sorted(out_root.glob("*/manifest.json")):
        data = json.loads(mf.read_text())
        for rec in data["records"].values():
            if rec.get("started") is None or rec.get("ended") is None or not rec.get("argv"):
                continue
            lr = log.get((str(rec["cwd"]), tuple(rec["argv"][1:])))
            rows.append({
                "obsid": data["obsid"], "unit": rec["unit"], "step": rec["step"],
                "proc_s": float(rec["duration_s"] or 0.0),
                "self_s": (lr["end"] - lr["start"]) if lr else float(rec["duration_s"] or 0.0),
                "start": lr["start"] if lr else None, "end": lr["end"] if lr else None,
            })
    return rows


def _critical_path(rows: list[dict[str, Any]], key: str) -> float:
    """The longest dependency chain of one observation, from the flow's structure.

    head (cifbuild, odfingest) -> per instrument: the longest sub-exposure chain ->
    its merges (in order) -> the longest band (image then exposure map).
    """
    obsid = rows[0]["obsid"]
    head = 0.0
    units: dict[str, float] = defaultdict(float)      # unit chain sums
    merges: dict[str, float] = defaultdict(float)     # per inst
    bands: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        u, d = r["unit"], r[key]
        if u == obsid:
            head += d
            continue
        rest = u[len(obsid):]
        inst = rest[:2]
        if "-" not in rest:
            units[rest] += d
        elif r["step"].startswith("merge"):
            merges[inst] += d
        else:
            bands[(inst, rest)] += d
    per_inst: dict[str, float] = defaultdict(float)
    for rest, d in units.items():
        per_inst[rest[:2]] = max(per_inst[rest[:2]], d)
    best = 0.0
    for inst, chain in per_inst.items():
        img = max((d for (i, _), d in bands.items() if i == inst), default=0.0)
        best = max(best, chain + merges.get(inst, 0.0) + img)
    return head + best


def lower_bound(rows: list[dict[str, Any]], cap: int, key: str = "self_s") -> dict[str, float]:
    """max(critical path, total work / cap) over the archive, from per-call durations ``key``."""
    by_obs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_obs[r["obsid"]].append(r)
    cp = max((_critical_path(rs, key) for rs in by_obs.values()), default=0.0)
    work = sum(r[key] for r in rows)
    return {"critical_path_s": cp, "work_s": work, "work_over_cap_s": work / cap, "lower_bound_s": max(cp, work / cap)}


def dir_size(path: Path) -> int:
    """Bytes of every file under ``path`` (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def descendant_hwm_mb(match: str) -> dict[int, float]:
    """Peak memory (VmHWM, MB) of this process's live descendants whose command line holds ``match``."""
    me = os.getpid()
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out = {}
    for pid in parents:
        p, seen = pid, 0
        while p in parents and p != me and seen < 50:
            p, seen = parents[p], seen + 1
        if p != me or pid == me:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match in cmd:
                hwm = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
                if hwm:
                    out[pid] = int(hwm.group(1)) / 1024
        except OSError:
            continue
    return out
