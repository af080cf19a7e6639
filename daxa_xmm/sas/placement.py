"""A product the pipeline places itself: the call that runs no SAS task.

An instrument with one sub-exposure has nothing to merge (``merge`` takes two lists), so
its cleaned list *is* the merged list: a copy. It is still a call
(:attr:`~daxa_xmm.sas.calls.SasCall.placed_from`), so the manifest records it, a re-run
skips it when it is up to date, what reads the merged list folds in its identity, and the
report and DAXA's records see the merge as they see any other. What runs it is here, in
place of :func:`daxa_xmm.sas.runner.run_sas`; its result reads as a SAS call's would.
"""

from __future__ import annotations

__all__ = ["place"]

import logging
import time
from pathlib import Path

from daxa_xmm.atomic import copy_into_place
from daxa_xmm.sas.calls import FailureKind, SasCall, SasResult
from daxa_xmm.sas.product_checks import check_product

log = logging.getLogger(__name__)


def place(call: SasCall) -> SasResult:
    """Check ``call.placed_from`` and copy it to the call's one product, atomically (the
    source stays: later re-runs and users read the sub-exposure's list too).

    Returns:
        ``ok`` with the product, or ``failed``: ``missing_input`` when the source is absent,
        ``corrupt_output`` when it is not what the output's check asks for, ``move`` when
        the copy failed (with its errno: a full disk stops the run as a SAS call's would).
    """
    source, started = call.placed_from, time.time()
    if source is None or len(call.products) != 1:
        raise ValueError(f"{call.step} [{call.unit}]: not a placement (one source, one product)")
    dest = call.products[0]

    def failed(failure: FailureKind, cause: str, errno: int | None = None) -> SasResult:
        log.warning("%s [%s]: %s", call.step, call.unit, cause)
        return SasResult(call=call, status="failed", exit_code=None, records=(), products=(), started=started,
                         ended=time.time(), stdout_log=None, stderr_log=None,
                         message=f"{call.task} [{call.unit}]: {cause}", failure=failure, os_errno=errno)

    if not Path(source).exists():
        return failed("missing_input", f"missing input {source} (the only sub-exposure's list; not copied)")
    check = call.outputs[0].check
    problem = check_product(source, check) if check else None
    if problem:
        return failed("corrupt_output", f"corrupt input {problem} (not copied)")
    try:
        copy_into_place(source, dest)
    except OSError as exc:
        return failed("move", f"could not copy {source} to {dest}: {exc}", exc.errno)
    return SasResult(call=call, status="ok", exit_code=None, records=(), products=(dest,), started=started,
                     ended=time.time(), stdout_log=None, stderr_log=None)
