"""The stand-in's SAS tasks: one line per task, everything the stand-in knows of it but its
parameters (:mod:`daxa_xmm.standin.params`, data copied from SAS's own sources).

A task's line names its implementation (``module:function``, imported only when the task is
called: each call is a fresh process, and importing every task would slow them all), the
version it reports (``epchain (epchain-8.82)``), where its first output is (the ``crash``
fault leaves it half-written) and whether fast mode (``DAXA_STANDIN_FAST``) writes
placeholders in its place. :func:`daxa_xmm.standin.install.install_standin` puts one executable
per line on the stand-in's PATH; a pipeline step's ``sas_tasks`` must each be one of them.
"""

from __future__ import annotations

__all__ = ["Task", "TASKS"]

from dataclasses import dataclass

_SETUP, _CHAINS, _CLEAN, _PRODUCTS = (f"daxa_xmm.standin.tasks_{m}" for m in ("setup", "chains", "clean", "products"))


@dataclass(frozen=True)
class Task:
    """One stand-in task.

    Attributes:
        run: ``module:function`` taking ``(args, ctx)`` and returning the exit status.
        version: the task's own version, as SAS prints it (``task (task-<version>)``).
        first_output: ``module:function`` giving the path of its first output from ``ctx``
            (None: unknown, or named by the call's arguments, as evselect's).
        fast: fast mode replaces it by placeholder outputs (the setup tasks always run).
    """

    run: str
    version: str
    first_output: str | None = None
    fast: bool = False


TASKS: dict[str, Task] = {
    "sasversion": Task("daxa_xmm.standin.tasks_version:sasversion", "1.3"),
    "cifbuild": Task(f"{_SETUP}:cifbuild", "4.11", f"{_SETUP}:cifbuild_output"),
    "odfingest": Task(f"{_SETUP}:odfingest", "3.35", f"{_SETUP}:odfingest_output"),
    "epchain": Task(f"{_CHAINS}:epchain", "8.82", f"{_CHAINS}:epchain_output", fast=True),
    "emchain": Task(f"{_CHAINS}:emchain", "11.22", f"{_CHAINS}:emchain_output", fast=True),
    "rgsproc": Task(f"{_CHAINS}:rgsproc", "1.48", f"{_CHAINS}:rgsproc_output", fast=True),
    "emanom": Task(f"{_CLEAN}:emanom", "1.4", f"{_CLEAN}:emanom_output", fast=True),
    "espfilt": Task(f"{_CLEAN}:espfilt", "4.3", f"{_CLEAN}:espfilt_output", fast=True),
    "evselect": Task("daxa_xmm.standin.evselect:run", "3.72", fast=True),
    "merge": Task(f"{_PRODUCTS}:merge", "4.14", f"{_PRODUCTS}:merge_output", fast=True),
    "eexpmap": Task(f"{_PRODUCTS}:eexpmap", "4.29", f"{_PRODUCTS}:eexpmap_output", fast=True),
}
