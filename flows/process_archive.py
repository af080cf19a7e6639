"""The archive flow and the command ``python -m flows.process_archive``.

``process_archive(config)`` maps the per-observation subflow over every selected ObsID,
``obs_concurrency`` at a time on threads (or on a Dask cluster), so a slow observation never
holds the others back. The number of SAS processes at once is capped at ``num_cores`` per
machine by slot files shared by every flow run on the machine. At the end it writes the
report (report.json, report.html, exposures.csv, quick-look PNGs) and Prefect artifacts.
"""

from __future__ import annotations

if __name__ == "__main__":  # the command line: bad input is reported before Prefect is imported
    from flows.cli import command

    command()

__all__ = ["process_archive", "process_archive_body", "run_archive", "plan_archive"]

import asyncio
import logging
import shlex
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.layout import ArchiveLayout, check_writable, select_obsids
from daxa_xmm.pipeline import head_start
from daxa_xmm.pipeline.locks import ObservationBusy, observation_lock
from daxa_xmm.pipeline.step_run import ObsContext, observation_context, stop_if_disk_full
from daxa_xmm.pipeline.storage import apply_storage_all
from daxa_xmm.pipeline.uptodate import finished_observations, up_to_date_outcome
from daxa_xmm.report.archive_report import (
    count_statuses,
    markdown_summary,
    observation_rows,
    summary_markdown,
    write_report_unless_disk_full,
)
from daxa_xmm.report.science import exposure_rows, observation_exposures
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.environment import detect_sas
from flows import api_retry
from flows.cluster import on_this_node, task_runner_for
from flows.process_observation import ObservationOutcome, orchestrated, process_observation
from flows.progress import progress

log = logging.getLogger(__name__)

def _obsids(config: ProcessingConfig, layout: ArchiveLayout) -> list[str]:
    return select_obsids(layout, config.obsids)


async def _subflow_with_retries(obsid: str, config: ProcessingConfig, ctx: ObsContext) -> ObservationOutcome:
    """The subflow, started again when Prefect itself failed to run it (an API 503).

    Problems of the data or of SAS never come here as exceptions; they are outcomes.
    """
    return await orchestrated(lambda: process_observation(obsid, config, ctx), f"{obsid}: the observation")


@task(name="observation", task_run_name="observation-{obsid}", cache_policy=NO_CACHE, persist_result=False)
async def observation_task(obsid: str, config: ProcessingConfig, ctx: ObsContext) -> dict[str, Any]:
    """Run the per-observation subflow; any failure becomes a ``failed`` outcome, not an exception.

    The observation is locked for the run (an ``flock`` on ``<obs>/.lock``, released by the
    kernel if this process dies, so a killed run leaves no stale lock): a second run on the
    same archive at once skips it with a clear message instead of corrupting its products.
    """
    ctx = on_this_node(ctx)  # on a Dask worker: its own slots and SAS set-up (flows/cluster.py)
    try:
        ran = await asyncio.to_thread(head_start.wait_for, ctx.layout, obsid)  # it may be under way
        if ran is not None:
            return ran.model_dump()
        with observation_lock(ctx.layout.obs_dir(obsid)):
            outcome = await _subflow_with_retries(obsid, config, ctx)
    except ObservationBusy as exc:
        outcome = ObservationOutcome(obsid=obsid, status="failed", message=str(exc), busy=True)
    except Exception as exc:  # one bad observation never spoils the others (a full disk stops them all)
        stop_if_disk_full(exc, ctx.layout, obsid)
        outcome = ObservationOutcome(obsid=obsid, status="failed", message=f"{type(exc).__name__}: {exc}")
    return outcome.model_dump()


def _publish_observation(layout: ArchiveLayout, outcome: dict[str, Any], finished: list[dict[str, Any]],
                         total: int) -> None:
    """As soon as an observation ends: its ``obs-<ObsID>`` table, its ``exposures-<ObsID>``
    table (the science summary of each exposure), and the archive summary so far, on the
    current flow run (a long run shows its progress observation by observation). Reading
    the exposures' products here also fills their cache, and its quick-look pictures are
    drawn now, so the report at the end reads and draws none of them again (drawn there,
    the pictures of 15,000 observations took about 13 minutes after the last one ended:
    BENCHMARKS.md section 9d)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from daxa_xmm.report.quicklook import observation_pictures

    obsid = outcome["obsid"]
    try:
        rows = observation_rows(layout, obsid) if layout.manifest(obsid).exists() else []
    except Exception as exc:  # noqa: BLE001 - an artifact is a nicety; the report tells the truth
        log.warning("artifact of %s: %s", obsid, exc)
        rows = []
    if rows:
        create_table_artifact(key=f"obs-{obsid}", table=[{k: v for k, v in r.items() if k != "products"} for r in rows],
                              description=f"{obsid}: {outcome['status']} {outcome.get('message', '')}".strip())
    exposures = observation_exposures(layout, obsid)  # (never raises: a problem leaves it empty)
    if exposures:
        create_table_artifact(key=f"exposures-{obsid}", table=exposure_rows([(obsid, exposures)]),
                              description=f"{obsid}: the science summary of each exposure (the report's exposures.csv)")
    try:
        observation_pictures(layout, obsid)
    except Exception as exc:  # noqa: BLE001 - pictures are a nicety (the report tries again)
        log.warning("quick-look pictures of %s: %s", obsid, exc)
    markdown = summary_markdown(f"daxa-xmm: {len(finished)} of {total} observations finished",
                                ((o["obsid"], o["status"], o.get("message", "")) for o in finished))
    create_markdown_artifact(key="archive-summary", markdown=markdown, description="daxa-xmm archive summary")


def _publish(layout: ArchiveLayout, outcomes: list[dict[str, Any]], sas_version: str) -> str:
    """Pictures, report files and the final summary artifact; returns the HTML report's path
    (or why it could not be written: a full disk must not hide the run's outcome)."""
    from prefect.artifacts import create_markdown_artifact

    report, page = write_report_unless_disk_full(layout, outcomes, sas_version)
    if report is not None:
        create_markdown_artifact(key="archive-summary", markdown=markdown_summary(report), description="daxa-xmm archive summary")
    return page


@flow(name="process-archive", log_prints=False)
def process_archive(config: ProcessingConfig) -> dict[str, Any]:
    """Process every selected observation of an archive of ODFs.

    Args:
        config: every setting of the run (the Prefect UI shows it as a form).

    Returns:
        ``{"report": <report.html>, "observations": [outcome...], "counts": {...}}``.
    """
    with interrupt.handle_signals():  # the command line's Ctrl-C/SIGTERM: stop cleanly
        return process_archive_body(config)


def process_archive_body(config: ProcessingConfig) -> dict[str, Any]:
    """The archive's work in the current flow run: ``process_archive``'s, or a deployment's.

    The observation subflows, the ``obs-<ObsID>`` artifacts (each published when its
    observation ends) and the archive summary all belong to the run that calls this, so a
    deployment's run shows them directly, not one nested flow run down. The observations
    run on the task runner the config asks for (threads, Dask, or a batch system's jobs:
    :mod:`flows.cluster`), ``obs_concurrency`` at a time on threads.
    """
    from prefect.futures import as_completed

    head_start.close_all()  # Prefect is up: the flow takes the observations from here
    layout = ArchiveLayout(config.archive, config.out_root)
    check_writable(layout.out_root)
    sas = detect_sas(heasoft=config.needs_heasoft)
    sas_version = sas.version.raw
    obsids = _obsids(config, layout)
    ran = head_start.taken(layout)  # run by the core while Prefect started: reported as they end
    done = set(finished_observations(layout, [o for o in obsids if o not in ran], config, sas_version))
    finished: list[dict[str, Any]] = [up_to_date_outcome(o) for o in obsids if o in done]
    todo = [o for o in obsids if o not in done]
    progress.set_total(len(todo))
    with task_runner_for(config) as runner:
        futures = {
            runner.submit(observation_task, parameters={
                "obsid": o, "config": config, "ctx": observation_context(o, config, layout, sas_version)}): o
            for o in todo
        }
        for fut in as_completed(list(futures)):
            obsid = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:
                outcome = {"obsid": obsid, "status": "failed", "message": f"{type(exc).__name__}: {exc}"}
            finished.append(outcome)
            _publish_observation(layout, outcome, finished, len(obsids))
    by_obsid = {o["obsid"]: o for o in finished}
    outcomes = [by_obsid[o] for o in obsids]
    apply_storage_all(layout, [o["obsid"] for o in outcomes if o["status"] == "ok"], config.storage)
    page = _publish(layout, outcomes, sas_version)
    return {"report": page, "observations": outcomes, "counts": count_statuses(o["status"] for o in outcomes)}


def run_archive(config: ProcessingConfig) -> dict[str, Any]:
    """Run :func:`process_archive` (the observations on the task runner the config asks for)."""
    api_retry.install()  # the flow run's own client too: short waits on a local 503
    return process_archive(config)


# --------------------------------------------------------------------------- dry run
def plan_archive(config: ProcessingConfig, sas_version: str) -> str:
    """Every SAS call the run would make, as text; runs nothing.

    The calls come from :mod:`daxa_xmm.pipeline.walk`, as the flow's do, with the run's settings.
    Steps after odfingest are planned from the observation's summary when an earlier run
    made one; otherwise the plan says they wait for it.
    """
    from daxa_xmm.pipeline.walk import plan_observation
    from daxa_xmm.sas.version import parse_sas_version

    layout = ArchiveLayout(config.archive, config.out_root)
    version = parse_sas_version(sas_version)
    lines = [f"# dry run: SAS {version}, nothing is run"]
    for obsid in _obsids(config, layout):
        lines.append(f"\n# ObsID {obsid}")
        for note, call in plan_observation(layout, obsid, config, version):
            if note:
                lines.append(f"#   {note}")
            if call is not None and call.placed_from is not None:
                lines.append(f"[{call.step} {call.unit}] one sub-exposure, copied not merged:")
                lines.append(f"    {call.placed_from} -> {call.products[0]}")
            elif call is not None:
                lines.append(f"[{call.step} {call.unit}]")
                lines.append(f"    $ {shlex.join(call.argv)}")
                lines.append(f"      cwd: {call.cwd}")
                for key, value in sorted(call.env.items()):
                    lines.append(f"      env: {key}={value}")
    return "\n".join(lines)
