"""``python -m deployments.serve``: serve the on-demand and the scheduled deployments.

Both run :func:`deployments.flow.archive_flow` in this process's machine:

- ``daxa-xmm-archive/on-demand``: started from the UI's form (or the API, or
  ``prefect deployment run``);
- ``daxa-xmm-archive/scheduled-reprocess``: on a cron schedule in UTC
  (``--cron`` or ``DAXA_XMM_REPROCESS_CRON``, default every night at 03:00 UTC) with
  ``reprocess=true``: new ObsIDs, failed units, and observations whose calibration changed.

The deployments' default parameters come from ``--config`` (the YAML/JSON file the command
line takes) plus ``--archive`` and ``--out``. ``--archive-root`` (or
``DAXA_XMM_ARCHIVE_ROOTS``) confines every run to those folders.
For a server and workers on other machines, use ``prefect.yaml`` and ``prefect deploy``.
"""

from __future__ import annotations

__all__ = ["DEFAULT_CRON", "CRON_ENV", "ON_DEMAND", "SCHEDULED", "deployment_parameters", "scheduled_description",
           "build_deployments", "main"]

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from daxa_xmm.config import ARCHIVE_ROOTS_ENV, load_config, read_config_file
from daxa_xmm.errors import DaxaXmmError

#: Every night at 03:00 UTC.
DEFAULT_CRON = "0 3 * * *"
#: Environment variable that changes the schedule without editing anything.
CRON_ENV = "DAXA_XMM_REPROCESS_CRON"
ON_DEMAND = "on-demand"
SCHEDULED = "scheduled-reprocess"


def deployment_parameters(config: Path | None, archive: Path | None, out: Path | None) -> dict[str, Any]:
    """The deployments' default parameters: only what the user set, validated when complete.

    Only the given settings are stored, so the UI shows the model's own defaults (and this
    machine's num_cores is not frozen into a deployment another machine may run).

    Raises:
        ConfigError: naming the field, when the settings are invalid.
    """
    data = read_config_file(config) if config is not None else {}
    if archive is not None:
        data["archive"] = str(Path(archive).absolute())
    if out is not None:
        data["out"] = str(Path(out).absolute())
    if "archive" in data:
        load_config(config, **{k: data[k] for k in ("archive", "out") if k in data})  # validates
    return data


def scheduled_description(cron: str) -> str:
    """The reprocessing deployment's description: it names the schedule's time zone.

    Prefect 3.8.8's UI shows the schedule in the deployment page's Schedules box in words
    ("At 03:00 AM every day") without its zone, and no setting or schedule field changes
    that in the default (V2) UI; the description (its Description tab) says it instead.
    """
    fields = cron.split()
    daily = ""
    if len(fields) == 5 and fields[0].isdigit() and fields[1].isdigit() and fields[2:] == ["*", "*", "*"]:
        daily = f", every day at {int(fields[1]):02d}:{int(fields[0]):02d} UTC"
    return ("Keep the archive current: new ObsIDs, failed units, changed calibration. "
            f"Schedule: `{cron}` (cron) in UTC{daily}. The Schedules box shows it without its zone; "
            "run times are shown in your browser's zone.")


def build_deployments(parameters: dict[str, Any], cron: str, *, schedule_active: bool = True) -> list[Any]:
    """The two RunnerDeployments of :func:`deployments.flow.archive_flow`.

    Each runs one flow run at a time: two runs of one archive would lock each other's
    observations and both fail. A run started from the form while one is running waits in
    the queue (ENQUEUE); a scheduled run that comes due while the previous one still runs is
    cancelled (CANCEL_NEW), visibly in the UI, since the next one will catch up anyway.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron

    from deployments.flow import archive_flow

    tags = ["daxa-xmm"]
    on_demand = archive_flow.to_deployment(
        name=ON_DEMAND,
        parameters=parameters,
        description="Process an archive of XMM-Newton ODFs with SAS; start it from the form.",
        tags=tags,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
    )
    scheduled = archive_flow.to_deployment(
        name=SCHEDULED,
        parameters={**parameters, "reprocess": True},
        schedules=[Cron(cron, timezone="UTC", active=schedule_active)],
        description=scheduled_description(cron),
        tags=[*tags, "scheduled"],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
    )
    # Switches that only confuse on a form: progress bars need a terminal (a server has
    # none), and `reprocess` is what makes the scheduled deployment the scheduled one. The
    # flow keeps them (with their defaults); the forms do not show them.
    for dep, hidden in ((on_demand, ("reprocess", "disable_progress")), (scheduled, ("disable_progress",))):
        if not isinstance(dep, RunnerDeployment):  # to_deployment returns a coroutine only inside an event loop
            raise TypeError("build_deployments must be called outside an event loop")
        for name in hidden:
            dep._parameter_openapi_schema.properties.pop(name, None)
    return [on_demand, scheduled]


def serve_deployments(deployments: list[Any], limit: int | None = None) -> None:
    """Serve ``deployments`` until Ctrl-C or SIGTERM, either of which stops it cleanly.

    What :func:`prefect.serve` does, except for SIGTERM: Prefect's own handler calls the
    runner's async ``stop`` without awaiting it ("coroutine 'Runner.astop' was never
    awaited") and the process runs on, which breaks ``systemctl stop`` and ``docker stop``.
    Here SIGTERM does what Ctrl-C does.
    """
    import asyncio

    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    runner.handle_sigterm = _sigterm_as_interrupt  # type: ignore[method-assign]
    names = ", ".join(f"{d.flow_name}/{d.name}" for d in deployments)
    print(f"serving {names}; stop with Ctrl-C or SIGTERM", flush=True)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        print("stopped", flush=True)


def _sigterm_as_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.splitlines()[0])
    p.add_argument("--archive", type=Path, help="default archive folder of both deployments")
    p.add_argument("--out", type=Path, help="default products folder")
    p.add_argument("--config", type=Path, help="YAML or JSON file of default settings (see ProcessingConfig)")
    p.add_argument("--archive-root", action="append", type=Path, default=None, metavar="DIR",
                   help=f"allow archives and products only under DIR (repeatable; default ${ARCHIVE_ROOTS_ENV})")
    p.add_argument("--cron", default=os.environ.get(CRON_ENV, DEFAULT_CRON),
                   help=f"schedule of the reprocessing deployment, cron in UTC (default ${CRON_ENV} or '{DEFAULT_CRON}')")
    p.add_argument("--limit", type=int, default=None, help="at most this many flow runs at once in this process")
    p.add_argument("--demo", type=Path, nargs="?", const=Path("daxa-demo"), default=None, metavar="DIR",
                   help="make the demo archive in DIR (default ./daxa-demo) and use the SAS stand-in")
    return p


def _setup_demo(base: Path) -> Path:
    """Demo archive and SAS stand-in, as ``python -m flows.process_archive --demo`` makes them."""
    from daxa_xmm.standin.install import install_standin
    from daxa_xmm.standin.synth import write_archive

    base = base.absolute()
    archive = base / "archive"
    if not archive.is_dir() or not any(archive.iterdir()):
        write_archive(archive, mix="demo")
    os.environ.update(install_standin(base / "sas-standin"))
    return archive


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "daxa_xmm")
    if args.demo is not None:
        args.archive = args.archive or _setup_demo(args.demo)
        args.out = args.out or args.demo.absolute() / "processed"
        args.archive_root = args.archive_root or [args.demo.absolute()]
    if args.archive_root:
        # The flow runs in child processes of this one: they inherit the roots.
        os.environ[ARCHIVE_ROOTS_ENV] = os.pathsep.join(str(r.absolute()) for r in args.archive_root)
    try:
        params = deployment_parameters(args.config, args.archive, args.out)
    except (DaxaXmmError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    active = "archive" in params
    if not active:
        print("note: no --archive (or archive in --config): the reprocessing schedule is created paused; "
              "the on-demand form asks for the archive", file=sys.stderr)
    serve_deployments(build_deployments(params, args.cron, schedule_active=active), limit=args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
