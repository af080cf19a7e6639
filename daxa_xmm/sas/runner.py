"""Run one SAS call: own process group, logs to files, three failure checks, atomic products.

DAXA ran SAS through ``sh -c`` and, on timeout, killed only the shell: the SAS child ran on
and the call waited for it. Here every call starts in a new session (its own process group,
no shell) and the whole group is ended at the timeout (:mod:`daxa_xmm.sas.process_group`); it
holds one of the machine's SAS slots while it runs (:mod:`daxa_xmm.sas.slots`).

A call has failed when its exit status is non-zero, when SAS printed a ``** task: error``
record, or when an expected output is missing: all three are checked. Outputs go to their
product paths only after all three checks pass, by atomic moves, so a failed or killed call
never leaves a half-written product where a later run would trust it. A product that is
whole but holds nothing usable (no events, no good time, no WCS, no exposure:
:mod:`daxa_xmm.sas.quality`) makes the call a data-quality outcome, ``data_quality``: not a
failure, never retried.

Example:
    >>> from daxa_xmm.sas.calls import SasCall, OutputSpec
    >>> call = SasCall("espfilt", "0201903501", "0201903501PNS003",
    ...                ("espfilt", "eventfile=pn.fits"), Path("/scratch/pnS003"),
    ...                outputs=(OutputSpec("pnS003-gti.fits", Path("/out/pnS003-gti.fits")),),
    ...                timeout_s=3600)
    >>> result = run_sas(call)  # doctest: +SKIP
    >>> raise_for_result(result)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["run_sas", "raise_for_result", "is_transient", "call_environment", "OBSERVATION_VARS"]

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daxa_xmm.atomic import copy_into_place, move_into_place
from daxa_xmm.errors import (
    DISK_FULL_ERRNOS,
    DiskFull,
    LayoutError,
    SasInputMissing,
    SasOutputMissing,
    SasTaskError,
    SasTimeout,
    is_disk_full,
    os_error_may_pass,
)
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.calls import FailureKind, OutputSpec, SasCall, SasResult
from daxa_xmm.sas.orphans import CALL_ENV, OWNER_ENV, ensure_watchdog
from daxa_xmm.sas.process_group import wait_for_call
from daxa_xmm.sas.product_checks import check_product
from daxa_xmm.sas.quality import DATA_QUALITY, quality_problem
from daxa_xmm.sas.slots import SlotLike, gate
from daxa_xmm.sas.stderr import SasRecord, has_error, parse_sas_stderr

log = logging.getLogger(__name__)

_START = "could not start"


# --------------------------------------------------------------------------- running
def _label(call: SasCall) -> str:
    return f"{call.task} [{call.unit}]"


def _prepare_cwd(call: SasCall) -> Path:
    """Give the call a clean start.

    With ``clean_cwd`` the folder is emptied. Without it the call reuses files an earlier
    call left there; only the earlier copies of the files it *creates* are removed, so a
    file present afterwards was written by this run (and merge, which refuses an existing
    outset, can be tried again after a failure).
    """
    cwd = Path(call.cwd)
    if call.clean_cwd and cwd.exists():
        resolved = cwd.resolve()
        precious = {Path(resolved.anchor), Path.home().resolve()}
        with contextlib.suppress(OSError):  # the process's own cwd may have been deleted
            precious.add(Path.cwd().resolve())
        if resolved in precious:
            raise LayoutError(f"refusing to empty {cwd} as the working directory of {_label(call)}")
        shutil.rmtree(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    for out in call.outputs:
        if out.kind == "create":
            for name in out.names:
                with contextlib.suppress(FileNotFoundError):
                    (cwd / name).unlink()
    return cwd


def _found(cwd: Path, out: OutputSpec) -> Path | None:
    """The first of the output's names present in ``cwd``, or None."""
    return next((cwd / n for n in out.names if (cwd / n).exists()), None)


def _leftovers(cwd: Path) -> tuple[str, ...]:
    """Names of the files left in ``cwd`` (top level) for the next call of the chain."""
    with contextlib.suppress(OSError):
        return tuple(sorted(e.name for e in os.scandir(cwd) if e.is_file()))
    return ()


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _first_error(records: tuple[SasRecord, ...]) -> SasRecord | None:
    return next((r for r in records if r.level == "error"), None)


#: The variables that name one observation's data (the ODF, oal/node6; its calibration index,
#: cifbuild/node9): a call gets them from its builder only, never from the user's shell, where
#: they may be another observation's (cifbuild must run without SAS_CCF: it makes it).
OBSERVATION_VARS = ("SAS_ODF", "SAS_CCF")


def call_environment(call: SasCall, inherited: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment ``call`` runs in: the inherited one without any observation's
    variables, then ``extra``, then the call's own (which wins)."""
    env = {k: v for k, v in inherited.items() if k not in OBSERVATION_VARS}
    env.update((k, v) for k, v in extra.items() if k not in OBSERVATION_VARS)
    env.update(call.env)
    return env


def run_sas(
    call: SasCall,
    *,
    log_dir: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    kill_grace_s: float = 3.0,
    slot: SlotLike | None = None,
) -> SasResult:
    """Run one SAS call to completion, failure or timeout; never leave a process behind.

    Args:
        call: what to run. ``call.cwd`` is emptied first when ``call.clean_cwd``; otherwise
            only stale copies of ``call.outputs`` are removed from it.
        log_dir: where ``<unit>-<step>.stdout.log`` and ``.stderr.log`` go; the call's cwd
            when None.
        extra_env: variables added on top of the inherited environment (e.g. ``SAS_CCFPATH``);
            ``call.env`` is applied last and wins; ``SAS_ODF`` and ``SAS_CCF`` come from
            ``call.env`` alone (:data:`OBSERVATION_VARS`).
        kill_grace_s: seconds between SIGTERM and SIGKILL when the group is killed.
        slot: a concurrency gate held only while the subprocess lives (not while moving
            outputs): a context manager such as ``threading.Semaphore`` or
            :class:`FileSlots`, or a factory of one. None: no gate.

    Returns:
        The result; ``status`` is ``ok`` only if the exit status is 0, stderr holds no
        ``** task: error`` record and every output exists, and then every output with a
        ``dest`` has been moved there; ``data_quality`` when all that holds and a product
        fails its data-quality check (placed all the same). Start-up failures (executable not
        found) come back as ``failed`` with ``exit_code`` None rather than as exceptions.

    Raises:
        LayoutError: ``clean_cwd`` would empty ``/``, the home folder or the current folder.
        KeyboardInterrupt: re-raised after the process group has been killed.
    """
    label = _label(call)
    cwd = _prepare_cwd(call)
    logs = Path(log_dir) if log_dir is not None else cwd
    logs.mkdir(parents=True, exist_ok=True)
    stdout_log = logs / f"{call.unit}-{call.step}.stdout.log"
    stderr_log = logs / f"{call.unit}-{call.step}.stderr.log"
    env = call_environment(call, os.environ, extra_env or {})
    # Marks the task and its children as this process's: if this process is SIGKILLed, its
    # watchdog (or the next run's sweep) kills them (daxa_xmm.sas.orphans).
    env[OWNER_ENV] = ensure_watchdog()
    env[CALL_ENV] = call_token = secrets.token_hex(8)
    argv = list(call.argv)
    started = ended = time.time()

    def result(status: Any, code: int | None, records: tuple[SasRecord, ...], cause: str = "",
               failure: FailureKind | None = None, **done: Any) -> SasResult:
        return SasResult(
            call=call, status=status, exit_code=code, records=records,
            products=done.pop("products", ()), started=started, ended=ended,
            stdout_log=stdout_log, stderr_log=stderr_log,
            message=f"{label}: {cause}" if cause else "", failure=failure, **done,
        )

    absent = [str(cwd / o.name) for o in call.outputs if o.kind == "modify" and _found(cwd, o) is None]
    if absent:
        stderr_log.write_text(f"daxa-xmm: not run: missing input {', '.join(absent)}\n")
        return result("failed", None, (), f"missing input {', '.join(absent)} (the call modifies it; not run)",
                      "missing_input")

    log.info("running %s: %s", label, call.describe())
    stopped = result("interrupted", None, (), "not started: the run was asked to stop", "interrupted")
    if interrupt.stop_requested():
        return stopped
    try:
        slot_gate = gate(slot)
        slot_gate.__enter__()
    except interrupt.Interrupted:
        return stopped
    try:
        if interrupt.stop_requested():
            return stopped
        started = time.time()
        with open(stdout_log, "wb") as out, open(stderr_log, "wb") as err:
            try:
                proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True,
                )
            except OSError as exc:
                err.write(f"daxa-xmm: {_START} {argv[0]!r}: {exc}\n".encode())
                ended = time.time()
                log.error("%s: %s: %s", label, _START, exc)
                return result("failed", None, (), f"{_START} {argv[0]!r}: {exc}", "start", os_errno=exc.errno)
            waited = wait_for_call(proc, call.timeout_s, kill_grace_s, call_token)
        ended = time.time()
    finally:
        slot_gate.__exit__(None, None, None)

    code = proc.returncode
    records = tuple(parse_sas_stderr(stderr_log.read_text(errors="replace")))
    error = _first_error(records)
    found = {o.name: _found(cwd, o) for o in call.outputs}
    missing = [o.name for o in call.outputs if found[o.name] is None]
    if waited == "interrupted":
        res = result("interrupted", code, records, "the run was asked to stop; process group ended", "interrupted")
    elif waited == "timeout":
        res = result("timeout", code, records, f"timed out after {call.timeout_s:g} s; process group killed", "timeout")
    elif code != 0:
        res = result("failed", code, records, _exit_text(code) + (f"; {error}" if error else ""), "exit")
    elif error is not None:
        res = result("failed", code, records, f"{error} (exit status 0)", "error_record")
    elif missing:
        res = result("failed", code, records,
                     f"missing output{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                     "(exit status 0, no error record)", "missing_output")
    elif corrupt := [p for o in call.outputs
                      if o.check and (f := found[o.name]) is not None and (p := check_product(f, o.check))]:
        res = result("failed", code, records, f"corrupt output {'; '.join(corrupt)} (exit status 0)",
                     "corrupt_output")
    elif isinstance(unfit := _unfit(call, found), str):
        res = result("failed", code, records, f"corrupt output {unfit} (exit status 0)", "corrupt_output")
    else:
        products: list[Path] = []
        modified = tuple(found[o.name] for o in call.outputs if o.kind == "modify")
        try:
            for o in call.outputs:
                if o.dest is not None:
                    place = copy_into_place if o.copy else move_into_place
                    products.append(place(found[o.name], o.dest))  # type: ignore[arg-type]
        except OSError as exc:
            res = result("failed", code, records, f"could not move output: {exc}", "move", products=tuple(products),
                         os_errno=exc.errno)
        else:
            # an unusable product is placed like a good one (a re-run finds it, the user can look
            # at it), but the call is a data-quality outcome and nothing reads it
            status, why = ("data_quality", f"{DATA_QUALITY}: {'; '.join(p for _, p in unfit)}") if unfit else ("ok", "")
            res = result(status, code, records, why, products=tuple(products), modified=modified,
                         leftovers=_leftovers(cwd), quality=tuple(kind for kind, _ in unfit))
    if res.ok:
        log.info("%s ok in %.1f s", label, res.duration_s)
    elif res.status == "data_quality":
        log.warning("%s (a data-quality outcome; what it feeds is not run)", res.message)
    else:
        log.warning("%s (logs: %s)", res.message, stderr_log)
    return res


def _unfit(call: SasCall, found: dict[str, Path | None]) -> list[tuple[str, str]] | str:
    """The data-quality checks the call's products fail, as (kind, why); or, as a string, why
    a product that passed its structure check could not be read for its data-quality check."""
    unfit: list[tuple[str, str]] = []
    for o in call.outputs:
        path = found[o.name]
        if o.quality is None or path is None:
            continue
        try:
            problem = quality_problem(path, o.quality)
        except (OSError, ValueError) as exc:
            return f"{path.name}: not readable for its data-quality check ({exc})"
        if problem is not None:
            unfit.append((o.quality.kind, problem))
    return unfit


# --------------------------------------------------------------------------- errors
def raise_for_result(result: SasResult) -> None:
    """Raise the error a failed result stands for; return quietly when it is ok, or a
    data-quality outcome (SAS did its work: the data hold nothing usable, which no retry changes).

    ``transient`` says whether retrying may help: a timeout, a signal (OOM killer, node
    shutdown) or an OS error may pass; an error record, a positive exit status or a missing
    output is what SAS will do again with the same inputs (espfilt's ``noCounts``).

    Raises:
        SasTimeout: the call ran out of time (transient).
        SasOutputMissing: exit 0, no error record, an expected output absent (deterministic).
        SasTaskError: any other failure.
    """
    if result.ok or result.status == "data_quality":
        return
    call = result.call
    cause = result.message.removeprefix(f"{_label(call)}: ") or result.status
    kwargs: dict[str, Any] = {
        "task": call.task,
        "argv": call.argv,
        "exit_code": result.exit_code,
        "records": result.records,
        "unit": call.unit,
        "log_files": [p for p in (result.stdout_log, result.stderr_log) if p is not None],
    }
    failure = result.failure
    if failure == "interrupted":
        raise interrupt.Interrupted(f"{_label(call)}: {cause}")
    if failure == "timeout":
        raise SasTimeout(cause, **kwargs)
    if failure in ("missing_output", "corrupt_output"):
        raise SasOutputMissing(cause, transient=False, **kwargs)
    if failure == "missing_input":
        raise SasInputMissing(cause, transient=False, **kwargs)
    said = " ".join([result.message, *(r.message for r in result.records)])
    if result.os_errno in DISK_FULL_ERRNOS or is_disk_full(text=said):
        raise DiskFull(cause, **kwargs)
    code = result.exit_code
    # a signal (OOM killer, node shutdown), or a start-up or move OS error that can pass
    transient = (failure in ("start", "move") and os_error_may_pass(result.os_errno)) or (
        failure == "exit" and code is not None and code < 0 and not has_error(result.records))
    raise SasTaskError(cause, transient=transient, **kwargs)


def is_transient(exc: BaseException | None) -> bool:
    """Whether a retry may succeed: the test behind the tasks' ``retry_condition_fn`` and the
    core's own retries (:func:`daxa_xmm.pipeline.observation_run.retrying_calls`).

    A :class:`SasTaskError` says so itself; a timeout is transient; an OS error is when its
    errno can pass (:data:`daxa_xmm.errors.TRANSIENT_ERRNOS`: a lost NFS mount, a busy file),
    not when it says something about the paths (a directory where a file should be, no
    permission) or that the disk is full; anything else (bad parameters, bugs) is not.
    """
    if exc is None:
        return False
    if isinstance(exc, SasTaskError):
        return exc.transient
    if isinstance(exc, OSError):
        return not is_disk_full(exc) and os_error_may_pass(exc.errno)
    return isinstance(exc, TimeoutError)

