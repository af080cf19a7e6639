"""The flow both deployments run: ProcessingConfig's fields as parameters, checked at the door.

``archive_flow`` is a thin wrapper around :func:`flows.process_archive.process_archive_body`,
run in this flow run itself (the observation subflows and the artifacts are this run's):

- its parameters are the top-level fields of :class:`daxa_xmm.config.ProcessingConfig`
  (sections as the section models), so the Prefect UI shows one form entry per setting with
  its title, description, default and limits, and a run that overrides one parameter keeps
  every other one of the deployment (see :mod:`deployments.params`);
- it validates everything (including the allowed archive roots of
  ``DAXA_XMM_ARCHIVE_ROOTS``) before SAS is even looked for: a bad form fails the run with
  a message naming the field and leaves the archive untouched;
- with ``reprocess`` (the scheduled deployment) it first checks every processed
  observation's calibration set against today's (:mod:`daxa_xmm.pipeline.calibration`), so that
  the run that follows re-runs cifbuild and everything downstream only where it changed.
  New ObsIDs and failed units need nothing special: every run processes the first and
  re-runs the second, because the manifest only skips what succeeded.

A run whose observations did not all end ``ok`` ends Failed (with the report written), so
the UI's run list tells at a glance which runs need attention.
"""

from __future__ import annotations

__all__ = ["archive_flow", "ObsId"]

import inspect
import json
import logging
import socket
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from pydantic import Field, StringConstraints

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.calibration import check_calibration, mark_stale
from daxa_xmm.pipeline.manifest import load_manifest
from daxa_xmm.sas.slots import FileSlots
from deployments.params import config_from_parameters

log = logging.getLogger(__name__)

#: A 10-digit ObsID; the pattern is part of the form, so the server refuses others at once.
ObsId = Annotated[str, StringConstraints(pattern=r"^\d{10}$")]
_NOT_OK = ("failed", "timeout", "upstream_failed")


class InvalidParameters(ConfigError):
    """The run's parameters are invalid: the run fails with one message, no traceback."""


class _NoTracebackForInvalidParameters(logging.Filter):
    """Prefect logs a failed flow run's exception with its traceback; for a form's mistakes
    the message alone says everything (it names every bad field)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], InvalidParameters):
            record.exc_info, record.exc_text = None, None
        return True


_NO_TRACEBACK = _NoTracebackForInvalidParameters()


def _deployment_parameters() -> dict[str, Any]:
    """The parameters stored on the deployment this run belongs to ({} outside a deployment)."""
    from prefect.runtime import deployment

    dep_id = deployment.id
    if not dep_id:
        return {}
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_deployment(dep_id).parameters or {})


@task(name="calibration-check", task_run_name="calibration-check-{obsid}", cache_policy=NO_CACHE, persist_result=False)
def calibration_check(layout: ArchiveLayout, obsid: str, num_cores: int, timeout_s: float) -> dict[str, Any] | None:
    """cifbuild with today's date aside; mark the observation stale when its set changed."""
    from daxa_xmm.pipeline.step_run import slots_root

    slots = FileSlots(slots_root() / socket.gethostname(), num_cores)
    change = check_calibration(layout, obsid, slots=slots, timeout_s=timeout_s)
    if change is None:
        return None
    marked = mark_stale(layout, change)
    return {"obsid": obsid, "change": change.describe(), "marked": marked}


def _prepare_reprocessing(config: ProcessingConfig) -> dict[str, Any]:
    """New ObsIDs, units to retry and calibration changes, before the run; returns a summary."""
    logger = get_run_logger()
    layout = ArchiveLayout(config.archive, config.out_root)
    present = layout.obsids()
    obsids = [o for o in present if config.obsids is None or o in config.obsids]
    new, done, retry = [], [], []
    for obsid in obsids:
        path = layout.manifest(obsid)
        if not path.exists():
            new.append(obsid)
            continue
        done.append(obsid)
        manifest = load_manifest(path, obsid)
        retry += [f"{r.unit}/{r.step}: {r.status}" for r in manifest.records.values() if r.status in _NOT_OK]
    changes: list[dict[str, Any]] = []
    check_errors: list[str] = []
    if config.analysis_date != "now":
        logger.info("analysis_date is fixed at %s: calibration sets are not refreshed", config.analysis_date)
    else:
        futures = [calibration_check.submit(layout, o, config.num_cores, config.timeout_s()) for o in done]
        for obsid, fut in zip(done, futures, strict=True):
            try:
                found = fut.result()
            except Exception as exc:  # a failed check leaves that observation as it was
                check_errors.append(f"{obsid}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                continue
            if found is not None:
                changes.append(found)
    summary = {"new_obsids": new, "retry_units": retry, "calibration_changed": changes, "check_errors": check_errors}
    logger.info("reprocessing: %d new ObsID(s), %d unit(s) to retry, %d calibration change(s)",
                len(new), len(retry), len(changes))
    return summary


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Scheduled reprocessing", ""]
    lines.append(f"**New ObsIDs** ({len(summary['new_obsids'])}): {', '.join(summary['new_obsids']) or 'none'}")
    lines.append("")
    lines.append(f"**Units re-run after a failure** ({len(summary['retry_units'])}):")
    lines += [f"- {u}" for u in summary["retry_units"]] or ["- none"]
    lines.append("")
    lines.append(f"**Calibration changed** ({len(summary['calibration_changed'])}):")
    lines += [f"- {c['obsid']}: {c['change']}" + ("" if c["marked"] else " (busy: next time)")
              for c in summary["calibration_changed"]] or ["- none"]
    if summary["check_errors"]:
        lines += ["", "**Calibration checks that failed**:"] + [f"- {e}" for e in summary["check_errors"]]
    return "\n".join(lines)


#: Where the form's parameter differs from ProcessingConfig's field: (annotation, default,
#: description). Every other parameter is the field itself: its type, limits, default and
#: description are read from the model (:func:`_parameters`), never written here again.
_ON_A_SERVER: dict[str, tuple[Any, Any, str]] = {
    # a plain list: a bad ObsID is named, not an anyOf of list-or-null
    "obsids": (list[ObsId], [], "process only these 10-digit ObsIDs; empty means every ObsID in the archive"),
    "num_cores": (Annotated[int | None, Field(ge=1)], None,
                  "at most this many SAS processes at once; empty means 90% of the cores of the machine running the flow"),
    "disable_progress": (bool, True, "no progress bars (always true on a server: there is no terminal)"),
}
_REPROCESS = ("first refresh calibration: rebuild each processed observation's calibration index with today's "
              "date and, where it changed, re-run cifbuild and everything downstream (the scheduled deployment "
              "sets this)")


def _parameters() -> tuple[inspect.Signature, str]:
    """The flow's signature and the Args of its docstring (what Prefect builds the form from),
    made from ProcessingConfig's fields, plus ``reprocess``."""
    params, doc = [], []
    for name, field in ProcessingConfig.model_fields.items():
        if name in _ON_A_SERVER:
            annotation, default, description = _ON_A_SERVER[name]
        else:
            annotation = Annotated[tuple([field.annotation, *field.metadata])] if field.metadata else field.annotation
            default = field.get_default(call_default_factory=True) if not field.is_required() else inspect.Parameter.empty
            description = field.description or ""
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation))
        doc.append(f"        {name}: {' '.join(description.split())}")
    params.append(inspect.Parameter("reprocess", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool))
    doc.append(f"        reprocess: {_REPROCESS}")
    return inspect.Signature(params, return_annotation=Any), "\n".join(doc)


def _archive_flow(**parameters: Any) -> Any:
    """Process an archive of XMM-Newton ODFs with SAS (daxa-xmm).

    A section (espfilt, clean, images) given in part keeps the deployment's other values.

    Returns:
        The archive result (report path, outcomes, counts); a Failed state naming the
        observations that are not ok.
    """
    call = _SIGNATURE.bind(**parameters)
    call.apply_defaults()  # a parameter the run left out has the form's default, as a keyword would
    params = dict(call.arguments)
    reprocess = bool(params.pop("reprocess"))
    params["obsids"] = params["obsids"] or None  # empty: every ObsID
    logger = get_run_logger()
    # Validation first: nothing below runs for a bad form, not even `sasversion`.
    deployment = _deployment_parameters()
    deployment.pop("reprocess", None)  # the flow's own switch, not a setting
    try:
        config = config_from_parameters(deployment, params)
    except ConfigError as exc:  # every bad field, named, in one line; no traceback in the log
        logger.error("%s", exc)
        for name in ("prefect.flow_runs", "prefect.engine"):  # the engine logs a failed run's exception
            logging.getLogger(name).addFilter(_NO_TRACEBACK)
        return Failed(message=str(exc), data=InvalidParameters(str(exc)))

    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key="run-settings",
        markdown="```json\n" + config.model_dump_json(indent=2) + "\n```",
        description="every setting this run used, after merging with the deployment's",
    )
    summary = None
    if reprocess:
        summary = _prepare_reprocessing(config)
        create_markdown_artifact(key="reprocess-summary", markdown=_summary_markdown(summary),
                                 description="what scheduled reprocessing found")

    from flows.process_archive import process_archive_body

    # in this run, not in a nested flow run: its observations and artifacts are this run's
    result = process_archive_body(config)
    if summary is not None:
        result["reprocess"] = summary
    bad = [o for o in result["observations"] if o["status"] != "ok"]
    logger.info("report: %s; %s", result["report"], json.dumps(result["counts"]))
    if bad:
        detail = "; ".join(f"{o['obsid']}: {o['status']} {o.get('message', '')}".strip() for o in bad)
        return Failed(message=f"{len(bad)} of {len(result['observations'])} observation(s) not ok: {detail}. "
                              f"Report: {result['report']}")
    return result


_SIGNATURE, _args = _parameters()
_archive_flow.__signature__ = _SIGNATURE  # type: ignore[attr-defined]
# Prefect names a served deployment's entrypoint after the function: it must be the Flow below
_archive_flow.__name__ = _archive_flow.__qualname__ = "archive_flow"
_archive_flow.__doc__ = (_archive_flow.__doc__ or "").replace("\n    Returns:", f"\n    Args:\n{_args}\n\n    Returns:", 1)
# validate_parameters=False: the settings are validated in the flow, all at once and without
# a traceback (config_from_parameters); Prefect's own validation would fail the run on the
# first bad section with its traceback. The server still checks the form's schema.
archive_flow = flow(name="daxa-xmm-archive", log_prints=False, validate_parameters=False)(_archive_flow)
