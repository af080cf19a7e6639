"""The archive flow and the command ``python -m flows.process_archive``.

``process_archive(config)`` maps the per-observation subflow over every selected ObsID,
``obs_concurrency`` at a time on threads (or on a Dask cluster), so a slow observation never
holds the others back. The number of SAS processes at once is capped at ``num_cores`` per
machine by slot files shared by every flow run on the machine. At the end it writes the
report (report.json, report.html, quick-look PNGs) and Prefect artifacts.
"""

from __future__ import annotations

__all__ = ["process_archive", "run_archive", "main", "plan_archive"]

import argparse
import asyncio
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from daxa_xmm.config import STEPS, ProcessingConfig, load_config
from daxa_xmm.errors import DaxaXmmError, LayoutError, SasNotFoundError
from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.locks import ObservationBusy, observation_lock
from daxa_xmm.quicklook import observation_pictures
from daxa_xmm.report import build_report, markdown_summary, write_report
from daxa_xmm import interrupt
from daxa_xmm.sasenv import detect_sas
from flows.process_observation import (
    ORCHESTRATION_ATTEMPTS,
    ORCHESTRATION_DELAY_S,
    ObservationOutcome,
    process_observation,
)
from flows.progress import progress
from tasks.sas_step import ObsContext

log = logging.getLogger(__name__)

#: Environment variables a SAS call needs that a Dask worker may not have: passed along.
_FORWARD_ENV = ("PATH", "SAS_DIR", "SAS_PATH", "SAS_CCFPATH", "LD_LIBRARY_PATH", "PYTHONPATH")


def _obsids(config: ProcessingConfig, layout: ArchiveLayout) -> list[str]:
    present = layout.obsids()
    if config.obsids is None:
        if not present:
            raise LayoutError(f"archive {layout.raw_root} holds no ObsID folders (10-digit names)")
        return present
    missing = [o for o in config.obsids if o not in present]
    if missing:
        raise LayoutError(f"ObsID(s) {', '.join(missing)} not found in archive {layout.raw_root}")
    return [check_obsid(o) for o in config.obsids]


def slots_root() -> Path:
    """Where the slot files live that cap SAS processes on this machine, for every run.

    Shared by all flow runs of this user on a machine (not per archive), so two runs
    started at once still hold ``num_cores`` together. ``DAXA_XMM_SLOTS_DIR`` overrides it.
    """
    default = Path(tempfile.gettempdir()) / f"daxa-xmm-slots-{os.getuid()}"
    return Path(os.environ.get("DAXA_XMM_SLOTS_DIR", default))


def _context(obsid: str, config: ProcessingConfig, layout: ArchiveLayout, sas_version: str) -> ObsContext:
    return ObsContext(
        layout=layout,
        obsid=obsid,
        sas_version=sas_version,
        num_cores=config.num_cores,
        slots_root=slots_root(),
        steps=None if config.steps is None else frozenset(config.steps),
        force=frozenset(config.force),
        extra_env={k: os.environ[k] for k in _FORWARD_ENV if k in os.environ}
        | {k: v for k, v in os.environ.items() if k.startswith("DAXA_STANDIN_")},
    )


async def _subflow_with_retries(obsid: str, config: ProcessingConfig, ctx: ObsContext) -> ObservationOutcome:
    """The subflow, started again when Prefect itself failed to run it (an API 503).

    The manifest makes this cheap and safe: what finished is skipped on the next attempt.
    Problems of the data or of SAS never come here as exceptions; they are outcomes.
    """
    for attempt in range(1, ORCHESTRATION_ATTEMPTS + 1):
        try:
            return await process_observation(obsid, config, ctx)
        except DaxaXmmError:
            raise
        except Exception as exc:
            if attempt == ORCHESTRATION_ATTEMPTS:
                raise
            log.warning("%s: Prefect failed to run the observation (%s); trying again", obsid, exc)
            await asyncio.sleep(ORCHESTRATION_DELAY_S * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@task(name="observation", task_run_name="observation-{obsid}", cache_policy=NO_CACHE, persist_result=False)
async def observation_task(obsid: str, config: ProcessingConfig, ctx: ObsContext) -> dict[str, Any]:
    """Run the per-observation subflow; any failure becomes a ``failed`` outcome, not an exception.

    The observation is locked for the run (an ``flock`` on ``<obs>/.lock``, released by the
    kernel if this process dies, so a killed run leaves no stale lock): a second run on the
    same archive at once skips it with a clear message instead of corrupting its products.
    """
    try:
        with observation_lock(ctx.layout.obs_dir(obsid)):
            outcome = await _subflow_with_retries(obsid, config, ctx)
    except ObservationBusy as exc:
        outcome = ObservationOutcome(obsid=obsid, status="failed", message=str(exc), busy=True)
    except Exception as exc:  # one bad observation never spoils the others
        outcome = ObservationOutcome(obsid=obsid, status="failed", message=f"{type(exc).__name__}: {exc}")
    return outcome.model_dump()


def _publish(layout: ArchiveLayout, outcomes: list[dict[str, Any]], sas_version: str) -> Path:
    """Pictures, report files and Prefect artifacts; returns the HTML report's path."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    pictures: dict[str, list[str]] = {}
    for o in outcomes:
        try:
            pics = observation_pictures(layout, o["obsid"])
        except Exception as exc:  # pictures are a nicety; never fail the run for them
            log.warning("quick-look pictures of %s: %s", o["obsid"], exc)
            pics = []
        pictures[o["obsid"]] = [str(p.relative_to(layout.out_root)) for p in pics]
    report = build_report(layout, outcomes, sas_version, pictures)
    _, page = write_report(report, layout.out_root)
    for o in report.observations:
        rows = [{k: v for k, v in r.items() if k != "products"} for r in o.rows]
        if rows:
            create_table_artifact(
                key=f"obs-{o.obsid}", table=rows, description=f"{o.obsid}: {o.status} {o.message}".strip()
            )
    create_markdown_artifact(key="archive-summary", markdown=markdown_summary(report), description="daxa-xmm archive summary")
    return page


def needs_heasoft(config: ProcessingConfig) -> bool:
    """Whether the run calls emchain, which needs HEASoft besides SAS."""
    return any(inst in ("M1", "M2") for inst in config.instruments)


@flow(name="process-archive", log_prints=False)
def process_archive(config: ProcessingConfig) -> dict[str, Any]:
    """Process every selected observation of an archive of ODFs.

    Args:
        config: every setting of the run (the Prefect UI shows it as a form).

    Returns:
        ``{"report": <report.html>, "observations": [outcome...], "counts": {...}}``.
    """
    with interrupt.handle_signals():  # the command line's Ctrl-C/SIGTERM: stop cleanly
        return _process_archive(config)


def _process_archive(config: ProcessingConfig) -> dict[str, Any]:
    layout = ArchiveLayout(config.archive, config.out_root)
    sas = detect_sas(heasoft=needs_heasoft(config))
    sas_version = sas.version.raw
    obsids = _obsids(config, layout)
    progress.set_total(len(obsids))
    futures = [observation_task.submit(o, config, _context(o, config, layout, sas_version)) for o in obsids]
    outcomes = []
    for obsid, fut in zip(obsids, futures):
        try:
            outcomes.append(fut.result())
        except Exception as exc:
            outcomes.append({"obsid": obsid, "status": "failed", "message": f"{type(exc).__name__}: {exc}"})
    page = _publish(layout, outcomes, sas_version)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    return {"report": str(page), "observations": outcomes, "counts": counts}


def task_runner_for(config: ProcessingConfig):  # type: ignore[no-untyped-def]
    """Threads on this machine, or Dask (an existing scheduler, or a LocalCluster)."""
    workers = config.obs_concurrency or 2 * config.num_cores
    if config.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=workers)


def run_archive(config: ProcessingConfig) -> dict[str, Any]:
    """Run :func:`process_archive` with the task runner the config asks for."""
    return process_archive.with_options(task_runner=task_runner_for(config))(config)


# --------------------------------------------------------------------------- dry run
def plan_archive(config: ProcessingConfig, sas_version: str) -> str:
    """Every SAS call the run would make, as text; runs nothing.

    The calls come from :mod:`daxa_xmm.pipeline`, as the flow's do, with the run's settings.
    Steps after odfingest are planned from the observation's summary when an earlier run
    made one; otherwise the plan says they wait for it.
    """
    from daxa_xmm.pipeline import plan_observation
    from daxa_xmm.sasversion import parse_sas_version

    layout = ArchiveLayout(config.archive, config.out_root)
    version = parse_sas_version(sas_version)
    lines = [f"# dry run: SAS {version}, nothing is run"]
    for obsid in _obsids(config, layout):
        lines.append(f"\n# ObsID {obsid}")
        for note, call in plan_observation(layout, obsid, config, version):
            if note:
                lines.append(f"#   {note}")
            if call is not None:
                lines.append(f"[{call.step} {call.unit}]")
                lines.append(f"    $ {shlex.join(call.argv)}")
                lines.append(f"      cwd: {call.cwd}")
                for key, value in sorted(call.env.items()):
                    lines.append(f"      env: {key}={value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flows.process_archive",
        description="Process an archive of XMM-Newton ODFs with SAS, observation by observation.",
    )
    p.add_argument("archive", nargs="?", type=Path, help="folder with one ODF folder per ObsID")
    p.add_argument("--out", type=Path, help="products folder (default: <archive>/../processed)")
    p.add_argument("--obsids", nargs="+", metavar="OBSID", help="only these ObsIDs")
    p.add_argument("--instruments", nargs="+", choices=["PN", "M1", "M2", "R1", "R2"], help="instruments to process")
    p.add_argument("--steps", nargs="+", choices=STEPS, help="run only these steps")
    p.add_argument("--force", nargs="+", choices=STEPS, default=None, help="re-run these steps even if up to date")
    p.add_argument("--config", type=Path, help="YAML or JSON file of settings (see ProcessingConfig)")
    p.add_argument("--num-cores", type=int, help="max SAS processes at once (default: 90%% of cores)")
    p.add_argument("--obs-concurrency", type=int, help="observations at once (default: 2 x num-cores)")
    p.add_argument("--timeout", help="time limit of one SAS call per unit, e.g. '2 h'")
    p.add_argument("--retries", type=int, help="retries of transient failures (default 2)")
    p.add_argument("--dry-run", action="store_true", help="print every SAS call it would make; run none")
    p.add_argument("--demo", action="store_true", help="make a small example archive and process it with the SAS stand-in")
    p.add_argument("--task-runner", choices=["threads", "dask"], help="where observations run")
    p.add_argument("--dask-address", help="scheduler of an existing Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _quiet_prefect() -> None:
    """Local runs: no telemetry, no chatter; the report is what the user reads."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _setup_demo(args: argparse.Namespace) -> Path:
    """Generate the example archive and put the SAS stand-in on PATH; return the archive."""
    from daxa_xmm.standin.install import install_standin
    from daxa_xmm.synth import write_archive

    base = Path(args.archive or "daxa-demo").absolute()
    archive = base / "archive"
    if not archive.is_dir() or not any(archive.iterdir()):
        write_archive(archive, mix="demo")
    env = install_standin(base / "sas-standin")
    os.environ.update(env)
    if args.out is None:
        args.out = base / "processed"
    return archive


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_prefect()
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.server"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        if args.demo:
            archive = _setup_demo(args)
        elif args.archive is None:
            print("error: give the ARCHIVE folder, or --demo", file=sys.stderr)
            return 2
        else:
            archive = args.archive
        config = load_config(
            args.config,
            archive=archive,
            out=args.out,
            obsids=args.obsids,
            instruments=args.instruments,
            steps=args.steps,
            force=args.force,
            num_cores=args.num_cores,
            obs_concurrency=args.obs_concurrency,
            timeout=args.timeout,
            retries=args.retries,
            task_runner=args.task_runner,
            dask_address=args.dask_address,
            disable_progress=True if args.no_progress else None,
        )
        if args.dry_run:
            try:
                version = detect_sas().version.raw
            except SasNotFoundError:
                version = "22.1.0"
                print("# SAS not found: planning for SAS 22.1.0", file=sys.stderr)
            print(plan_archive(config, version))
            return 0
        detect_sas(heasoft=needs_heasoft(config))  # fail now, with the set-up instructions, before any flow starts
    except DaxaXmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if not config.disable_progress and sys.stderr.isatty():
        progress.start()
    interrupt.enable()  # Ctrl-C and SIGTERM stop the run cleanly (daxa_xmm.interrupt)
    try:
        result = run_archive(config)
    except DaxaXmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.stop()
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result["counts"].items()))
    print(f"Processed {len(result['observations'])} observation(s): {counts}")
    for o in result["observations"]:
        if o["status"] != "ok":
            print(f"  {o['obsid']}: {o['status']} {o.get('message', '')}")
    print(f"Products: {config.out_root}")
    print(f"Report:   {result['report']}")
    stopped = interrupt.exit_code()
    if stopped is not None:
        print("Stopped before the end: run the same command again to resume where it stopped.")
        return stopped
    return 0 if all(o["status"] == "ok" for o in result["observations"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
