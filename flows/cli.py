"""The command ``python -m flows.process_archive`` (also ``flows.cli``).

Everything a user can get wrong (the settings, the archive, the ObsIDs, SAS's set-up) is
checked here before Prefect is imported, so a mistake is reported in about a second, with
no traceback; the flow runs only once they pass.

The settings' options are generated from ProcessingConfig (flows/cli_options.py).
"""

from __future__ import annotations

__all__ = ["main", "command"]

import argparse
import atexit
import logging
import os
import sys
from pathlib import Path
from typing import Any

from daxa_xmm.config import ProcessingConfig, load_config
from daxa_xmm.errors import DaxaXmmError, SasNotFoundError
from daxa_xmm.layout import ArchiveLayout, check_writable, select_obsids
from daxa_xmm.pipeline.head_start import HeadStart
from daxa_xmm.pipeline.stages import STAGE_NAMES
from daxa_xmm.pipeline.step_run import observation_context
from daxa_xmm.pipeline.storage import apply_storage_all
from daxa_xmm.pipeline.uptodate import finished_observations, up_to_date_outcome
from daxa_xmm.report.archive_report import count_statuses, write_archive_report, write_report_unless_disk_full
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.environment import detect_sas
from flows.cli_options import add_config_options, config_overrides
from flows.progress import progress

#: The command's exit codes, in --help and the README.
EXIT_CODES = ("Exit codes: 0 every observation ok; 1 some failed; 2 bad input or SAS not set up; 3 Prefect "
              "could not start; 4 stopped early: the disk is full; 130/143/129 stopped by Ctrl-C/SIGTERM/SIGHUP (run again "
              "to resume).")


#: The exit code of a run stopped because the disk is full.
DISK_FULL_EXIT = 4


def _prefect_startup_failure(exc: BaseException) -> bool:
    """An exception that says Prefect's API could not be reached or started."""
    text = f"{type(exc).__name__} {exc}".lower()
    return any(w in text for w in ("ephemeral", "failed to reach api", "connecterror", "server did not start",
                                   "timed out while attempting to connect"))


def _prefect_hint() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return (f"the Prefect API at {url} (PREFECT_API_URL) does not answer: start that server "
                "(`prefect server start`), or unset PREFECT_API_URL to run on a temporary local one")
    return ("Prefect's temporary local server did not start: try again, or start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("daxa-xmm")
    except PackageNotFoundError:  # run from a checkout that was not pip-installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m flows.process_archive",
        usage="%(prog)s [ARCHIVE] [--config FILE] [--dry-run | --demo] [settings...]",
        description="Process an archive of XMM-Newton ODFs with SAS, observation by observation.",
        epilog=f"STEP is one of: {', '.join(STAGE_NAMES)}. Energies and times take a unit ('0.5 keV', '2 h'). "
               "A setting given here overrides the --config file's. " + EXIT_CODES,
    )
    p.add_argument("--version", action="version", version=f"daxa-xmm {_version()}")
    p.add_argument("archive", nargs="?", type=Path, help="folder with one ODF folder per ObsID")
    p.add_argument("--config", type=Path, metavar="FILE", help="YAML or JSON file of settings (ProcessingConfig's fields)")
    p.add_argument("--dry-run", action="store_true", help="print every SAS call it would make; run none")
    p.add_argument("--demo", action="store_true", help="make a small example archive and process it with the SAS stand-in")
    settings = p.add_argument_group("settings", "ProcessingConfig's fields (sections as --section.field)")
    add_config_options(settings)
    settings.add_argument("--no-progress", dest="disable_progress", action="store_const", const=True,
                          help="the same as --disable-progress")
    return p


#: Services of Prefect's temporary server (the one a run starts when PREFECT_API_URL is unset)
#: that keep only its event feed, automations and task-run history, which nobody sees: that
#: server has no UI and stops with the run, whose record is the manifests and the report. On
#: SQLite they write every task-run event again, contending with the API for its one write
#: lock; at 100 observations at once the database then locked for 60 s at a time, and without
#: them the same run went through (BENCHMARKS.md, section 2b). A server of yours is not
#: affected; set a variable to ``true`` to keep that service.
TEMPORARY_SERVER_SERVICES_OFF = {
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
}


def quiet_prefect() -> None:
    """Local runs: no telemetry, no chatter, no services nobody reads; the report is what the
    user reads."""
    for key, value in TEMPORARY_SERVER_SERVICES_OFF.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LOG_PRINTS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Prefect's 20 s for its temporary server is short on a busy machine, the more so while
    # the head start's first SAS calls run beside it: wait longer before giving up (exit 3)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for name in ("prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.server"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _setup_demo(args: argparse.Namespace) -> Path:
    """Generate the example archive and put the SAS stand-in on PATH; return the archive."""
    from daxa_xmm.standin.install import setup_demo

    base = Path(args.archive or "daxa-demo").absolute()
    if args.out is None:
        args.out = base / "processed"
    return setup_demo(base)


def command() -> None:
    """The ``daxa-xmm`` script and ``python -m flows.process_archive``: :func:`main`, then out.

    Once every exit handler has run (Prefect's temporary server stopped, its logs sent),
    tearing the interpreter down frees Prefect's whole import graph object by object: over a
    second of a short run (BENCHMARKS.md section 7) for nothing, so the process ends there.
    Only when ``main`` returned: an exception leaves the normal way, with its traceback.
    """
    code: list[int] = []

    def _end() -> None:
        if code:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code[0])

    atexit.register(_end)  # registered before Prefect is imported: runs after its handlers
    code.append(main())
    raise SystemExit(code[0])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_prefect()
    try:
        if args.demo:
            archive = _setup_demo(args)
        elif args.archive is None:
            print("error: give the ARCHIVE folder, or --demo", file=sys.stderr)
            return 2
        else:
            archive = args.archive
        settings = config_overrides(args)
        settings["archive"] = archive
        config = load_config(args.config, **settings)
        if args.dry_run:
            from flows.process_archive import plan_archive

            try:
                version = detect_sas().version.raw
            except SasNotFoundError:
                version = "22.1.0"
                print("# SAS not found: planning for SAS 22.1.0", file=sys.stderr)
            print(plan_archive(config, version))
            return 0
        # fail now, before Prefect starts: a missing archive or ObsID, then SAS's set-up
        layout = ArchiveLayout(config.archive, config.out_root)
        obsids = select_obsids(layout, config.obsids)
        check_writable(layout.out_root)
        sas_version = detect_sas(heasoft=config.needs_heasoft).version.raw
        # plan first: a re-run that finds every observation finished needs no Prefect at all
        finished = set(finished_observations(layout, obsids, config, sas_version)) if obsids else set()
        if obsids and len(finished) == len(obsids):
            outcomes = [up_to_date_outcome(o) for o in obsids]
            apply_storage_all(layout, obsids, config.storage)  # a leaner policy frees space, redoing nothing
            _, page = write_report_unless_disk_full(layout, outcomes, sas_version)
            return _summary(config, {"observations": outcomes, "report": page,
                                     "counts": count_statuses(o["status"] for o in outcomes)})
    except (DaxaXmmError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if not config.disable_progress and sys.stderr.isatty():
        progress.start()
    interrupt.enable()  # Ctrl-C, SIGTERM and SIGHUP stop the run cleanly (daxa_xmm.sas.interrupt)
    head, result = None, None  # result: the flow's; None when stopped before it began
    try:
        with interrupt.during_start_up():
            head = _head_start(config, layout, sas_version, [o for o in obsids if o not in finished])
            from flows.process_archive import run_archive

            result = run_archive(config)
    except DaxaXmmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP while Prefect starts, before the flow's own handling
        interrupt.request_stop()  # (set already by the handler) the head start's calls are ended, none starts
    except Exception as exc:
        if not _prefect_startup_failure(exc):
            raise
        print(f"error: {_prefect_hint()} ({type(exc).__name__}: {str(exc).splitlines()[0]})", file=sys.stderr)
        return 3
    finally:
        if head is not None:
            if result is None:  # the flow never took its observations over
                head.abandon()
            head.join()
        progress.stop()
    if result is None:
        return _stopped_at_start_up(config, layout, obsids, sas_version)
    return _summary(config, result)


def _stopped_at_start_up(config: ProcessingConfig, layout: ArchiveLayout, obsids: list[str], sas_version: str) -> int:
    """Stopped before the flow began (Prefect's server was starting): the head start's calls
    are recorded ``interrupted``; the report says which observations are finished (the same
    check as a re-run's), and the others are to resume."""
    done = set(finished_observations(layout, obsids, config, sas_version))
    outcomes = [up_to_date_outcome(o) if o in done else
                {"obsid": o, "status": "interrupted", "message": "stopped while Prefect started; not finished"}
                for o in obsids]
    try:
        _, page = write_archive_report(layout, outcomes, sas_version)
    except OSError as exc:  # a full disk, say: the manifests still say what was done
        print(f"The report could not be written ({exc}); the manifests say what was done.", file=sys.stderr)
        page = None
    return _summary(config, {"observations": outcomes, "report": str(page) if page else "(not written)",
                             "counts": count_statuses(o["status"] for o in outcomes)})


def _head_start(config: ProcessingConfig, layout: ArchiveLayout, sas_version: str, todo: list[str]) -> HeadStart | None:
    """The first observations start now, while Prefect's temporary server starts (daxa_xmm.pipeline.head_start);
    not with a running server (nothing to wait for) or Dask (the subflows run elsewhere)."""
    if not todo or config.task_runner != "threads" or os.environ.get("PREFECT_API_URL"):
        return None
    return HeadStart(layout, config, todo, lambda o: observation_context(o, config, layout, sas_version),
                     watch=progress).start()


def _summary(config: ProcessingConfig, result: dict[str, Any]) -> int:
    """What the command prints at the end, and its exit code."""
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result["counts"].items()))
    print(f"Processed {len(result['observations'])} observation(s): {counts}")
    for o in result["observations"]:
        if o["status"] != "ok":
            print(f"  {o['obsid']}: {o['status']} {o.get('message', '')}")
    print(f"Products: {config.out_root}")
    print(f"Report:   {result['report']}")
    full = interrupt.stop_reason()
    if full is not None:
        print(f"Stopped early: {full}.")
        return DISK_FULL_EXIT
    stopped = interrupt.exit_code()
    if stopped is not None:
        print("Stopped before the end: run the same command again to resume where it stopped.")
        return stopped
    return 0 if all(o["status"] == "ok" for o in result["observations"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
