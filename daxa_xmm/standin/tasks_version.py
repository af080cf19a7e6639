"""Stand-in sasversion: the release block the pipeline reads SAS's version from.

Apart from the set-up tasks, so that the calls that only ask for the version (one per run
and per observation) import nothing else.
"""

from __future__ import annotations

__all__ = ["sasversion"]

from daxa_xmm.standin.common import TaskContext
from daxa_xmm.standin.tasks import TASKS


def sasversion(args: dict[str, str], ctx: TaskContext) -> int:
    """Print SAS's release block (new form) or the old ``[xmmsas_...]`` tag."""
    version = ctx.sas_version()
    if version.startswith("xmmsas_"):
        print(f"sasversion:- sasversion (sasversion-{TASKS['sasversion'].version}) [{version}]")
        return 0
    lines = [
        "sasversion:- XMM-Newton SAS release and build information:",
        "",
        f"SAS release: {version}",
        "Compiled on: Tue Mar  4 07:29:35 UTC 2025",
        "Compiled by: daxa_xmm.standin",
        "Platform   : Ubuntu22.04",
        "",
        "SAS-related environment variables that are set:",
        "",
    ]
    for var in ("SAS_DIR", "SAS_PATH", "SAS_CCFPATH", "SAS_CCF", "SAS_ODF"):
        if ctx.env.get(var):
            lines.append(f"{var} = {ctx.env[var]}")
    print("\n".join(lines))
    return 0
