"""Helpers shared by the flow tests: configs, manifests, and naming the calls in a call log.

Every assertion of these tests is made from the SAS stand-in's call log (what ran, with
which argv, from when to when, under which pid) and from the manifests (what the pipeline
recorded), never from how long something took.
"""

from __future__ import annotations

__all__ = [
    "REPO",
    "config",
    "manifest_records",
    "call_keys",
    "calls_of",
    "max_overlap",
    "cli_env",
    "run_cli",
    "harness_api_url",
    "start_cli",
]

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from daxa_xmm.config import ProcessingConfig

REPO = Path(__file__).resolve().parents[2]
#: One band instead of two: half the image calls, same code paths.
ONE_BAND = {"bands": [("0.5 keV", "2.0 keV")]}


def config(tmp_path: Path, archive: str = "archive", out: str = "processed", **kw: Any) -> ProcessingConfig:
    """A small, fast run: two SAS slots, no retry delay, one image band unless given."""
    kw.setdefault("num_cores", 2)
    kw.setdefault("retry_delay", "0 s")
    kw.setdefault("images", ONE_BAND)
    return ProcessingConfig(archive=tmp_path / archive, out=tmp_path / out, **kw)


def manifest_records(out_root: Path, obsid: str) -> dict[str, dict[str, Any]]:
    """The manifest's records of one observation, keyed ``<unit>/<step>``."""
    return json.loads((out_root / obsid / "manifest.json").read_text())["records"]


def call_keys(calls: Iterable[Mapping[str, Any]], out_root: Path) -> list[str]:
    """Name each logged call by the manifest record with the same cwd and argv (``<unit>/<step>``;
    argv alone does not name an observation, whose ODF is in SAS_ODF).

    A call the manifests do not know is named ``?<task> <cwd>`` so that an assertion on the
    set of keys shows it plainly.
    """
    by_call: dict[tuple[str, ...], str] = {}
    for path in sorted(out_root.glob("*/manifest.json")):
        for key, rec in json.loads(path.read_text())["records"].items():
            by_call[(rec["cwd"], *rec["argv"])] = key
    return [by_call.get((c["cwd"], c["task"], *c["argv"]), f"?{c['task']} {c['cwd']}") for c in calls]


def calls_of(calls: Iterable[Mapping[str, Any]], task: str, where: str) -> list[Mapping[str, Any]]:
    """The calls of ``task`` whose argv or cwd mention ``where`` (a unit label, for instance)."""
    return [c for c in calls if c["task"] == task and (where in c["cwd"] or any(where in a for a in c["argv"]))]


def max_overlap(calls: Iterable[Mapping[str, Any]]) -> int:
    """The largest number of calls whose logged [start, end] intervals overlap at one instant.

    Each interval lies inside the lifetime of its process, which lies inside the time its
    slot was held, so this can only under-count what the slots allowed, never over-count.
    """
    events = []
    for c in calls:
        if c.get("end") is None:
            raise AssertionError(f"call without an end in the log: {c}")
        events.append((c["start"], 1))
        events.append((c["end"], -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end at the same instant as a start first
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def harness_api_url() -> str:
    """The API URL of the session's Prefect test backend, for child processes to share it.

    Without it every ``python -m flows.process_archive`` child starts its own temporary
    server (10-15 s each on these machines).
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise RuntimeError("no PREFECT_API_URL: is the prefect_harness fixture in use?")
    return url


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI child: this one, on the harness's API, quiet."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=harness_api_url(),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    env.update(extra)
    return env


def run_cli(args: list[str], *, cwd: Path, env: Mapping[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m flows.process_archive ARGS`` as a user runs it, output captured."""
    return subprocess.run(  # noqa: S603 - argv list
        [sys.executable, "-m", "flows.process_archive", *args],
        cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout_s, check=False,
    )


def start_cli(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``python -m flows.process_archive ARGS`` without waiting for it."""
    return subprocess.Popen(  # noqa: S603 - argv list
        [sys.executable, "-m", "flows.process_archive", *args],
        cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
