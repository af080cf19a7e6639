"""Entry point of every stand-in executable: parse, inject faults, run the task, log the call.

Each ``bin/<task>`` script calls :func:`main`. What a real SAS task does around its work
is done here once: echo the ``Executing (routine)`` line, reject unknown parameters, print
``** task: error (Name), message`` and exit 1 on a SAS error; what SAS never does but tests
need (faults, durations, the call log) is applied around it. Task modules are imported
lazily so ``sasversion`` starts fast.
"""

from __future__ import annotations

__all__ = ["main"]

import errno
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from daxa_xmm.standin import faults
from daxa_xmm.standin.common import (
    SasExit,
    TaskContext,
    error,
    executing_line,
    info,
    parse_args,
)
from daxa_xmm.standin.tasks import TASKS


def _resolve(spec: str) -> Callable[..., object]:
    """Import ``module:function`` lazily."""
    module, _, func = spec.partition(":")
    return getattr(importlib.import_module(module), func)


def _first_output(task: str, ctx: TaskContext) -> Path | None:
    """The first output of this call, or None if unknown (evselect: filteredset/imageset)."""
    if task == "evselect":
        for name in ("filteredset", "imageset", "spectrumset", "rateset"):
            if name in ctx.args:
                return ctx.path(ctx.args[name])
        return None
    spec = TASKS[task].first_output if task in TASKS else None
    if spec is None:
        return None
    try:
        out = _resolve(spec)(ctx)
    except Exception:  # noqa: BLE001 - a crash must happen even if the name can't be found
        return None
    return Path(str(out)) if out else None


def _run_task(task: str, ctx: TaskContext) -> int:
    """Dispatch to the implementation; a missing one (evselect not yet written) is a SAS error.

    With ``DAXA_STANDIN_FAST=1`` (benchmarks only) the tasks of
    ``fast`` in :data:`daxa_xmm.standin.tasks.TASKS` write placeholder outputs instead.
    """
    from daxa_xmm.standin import fast

    if TASKS[task].fast and fast.enabled(ctx.env):
        return fast.run_fast(task, ctx)
    try:
        func = _resolve(TASKS[task].run)
    except (ImportError, AttributeError) as exc:
        raise SasExit("TaskNotAvailable", f"the stand-in has no implementation of {task} ({exc})") from exc
    return int(str(func(dict(ctx.args), ctx) or 0))


def _corrupt(task: str, ctx: TaskContext) -> int:
    """Run the task, then cut its first output to a third of its size, and exit 0 as if all
    went well (a full disk under a task that does not check its writes)."""
    status = _run_task(task, ctx)
    out = _first_output(task, ctx)
    if out is not None and out.is_file():
        with open(out, "r+b") as fh:
            fh.truncate(out.stat().st_size // 3)
    return status


def _degraded(task: str, ctx: TaskContext, action: str) -> int:
    """Run the task, then take out of its first output what science needs (no good time, no
    events, no WCS, no exposure: :mod:`daxa_xmm.standin.degrade`), and exit as it did."""
    from daxa_xmm.standin.degrade import degrade

    status = _run_task(task, ctx)
    degrade(action, task, _first_output(task, ctx))
    return status


def _crash(task: str, ctx: TaskContext, log: dict[str, object], log_path: str | None) -> None:
    """Run the task, cut its first output to half its size, then die by SIGKILL."""
    try:
        _run_task(task, ctx)
    except SasExit:
        pass
    out = _first_output(task, ctx)
    if out is not None and out.is_file():
        size = out.stat().st_size
        with open(out, "r+b") as fh:
            fh.truncate(size // 2)
    if log_path:
        log.update(end=time.time(), exit=-signal.SIGKILL, fault="crash")
        faults.append_call_log(log_path, log)
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(task: str, argv: Sequence[str]) -> int:
    """Run stand-in ``task`` with ``argv`` (the arguments after the task name).

    Returns:
        The exit status: 0 on success, 1 after a SAS error record.
    """
    ctx = TaskContext.current(task, argv)
    log_path = ctx.env.get("DAXA_STANDIN_LOG") or None
    log: dict[str, object] = {
        "task": task,
        "argv": list(argv),
        "cwd": str(ctx.cwd),
        "SAS_CCF": ctx.env.get("SAS_CCF"),
        "SAS_ODF": ctx.env.get("SAS_ODF"),
        "SAS_DIR": ctx.env.get("SAS_DIR"),  # whose SAS set-up ran it (a cluster's node's own, say)
        "pid": os.getpid(),
        "start": ctx.start,
        "end": None,
        "exit": None,
    }
    status = 1
    try:
        status = _main(task, argv, ctx, log, log_path)
    finally:
        if log_path:
            log.update(end=time.time(), exit=status)
            faults.append_call_log(log_path, log)
    return status


def _main(task: str, argv: Sequence[str], ctx: TaskContext, log: dict[str, object], log_path: str | None) -> int:
    """The body of :func:`main`, returning the exit status."""
    try:
        ctx.args = parse_args(task, argv, ctx.sas_version())
    except SasExit as exc:
        error(task, exc.name, exc.message)
        return exc.status
    version_tag = ctx.creator(TASKS[task].version if task in TASKS else "1.0").split(" ", 1)[1]
    if ctx.args.get("-v"):
        print(f"{task} {version_tag}")
        return 0
    if ctx.args.get("-h"):
        print(f"{task} {version_tag}: SAS stand-in; parameters: {' '.join(_params(task))}")
        return 0
    info(task, f"Executing (routine): {executing_line(task, ctx.args, ctx.sas_version())}")
    try:
        rules = faults.load_rules(ctx.env)
    except (ValueError, OSError) as exc:
        error(task, "StandinConfig", f"bad DAXA_STANDIN_FAULTS: {exc}")
        return 1
    haystack = " ".join(argv) + " " + str(ctx.cwd)
    for rule in rules:
        if not rule.matches(task, haystack) or not faults.claim_rule(rule, ctx.env):
            continue
        log["fault"] = rule.action
        if rule.action == "fail":
            error(task, rule.name, rule.message)
            return 1
        if rule.action == "enospc":
            error(task, "OSError", f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}")
            return 1
        if rule.action == "hang":
            if log_path:  # the call never ends on its own: record that it started
                faults.append_call_log(log_path, {**log, "end": None, "exit": None})
                log_path = None
            while True:
                time.sleep(3600)
        if rule.action == "sleep":
            time.sleep(rule.seconds)
        if rule.action == "crash":
            _crash(task, ctx, log, log_path)
        if rule.action == "corrupt":
            try:
                return _corrupt(task, ctx)
            except SasExit as exc:
                error(task, exc.name, exc.message)
                return exc.status
        if rule.action in faults.DEGRADING:
            try:
                return _degraded(task, ctx, rule.action)
            except SasExit as exc:
                error(task, exc.name, exc.message)
                return exc.status
        break
    delay = faults.duration_for(task, argv, ctx.env)
    if delay > 0:
        time.sleep(delay)
    try:
        status = _run_task(task, ctx)
    except SasExit as exc:
        error(task, exc.name, exc.message)
        return exc.status
    except OSError as exc:
        error(task, "OSError", str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - SAS reports internal failures as an error record too
        error(task, "InternalError", f"{type(exc).__name__}: {exc}")
        return 1
    return status


def _params(task: str) -> list[str]:
    """The task's parameter names."""
    from daxa_xmm.standin.params import params_for

    return list(params_for(task) or {})
