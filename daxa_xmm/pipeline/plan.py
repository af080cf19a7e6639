"""Show every SAS call the pipeline would make for one observation; nothing runs, no SAS needed.

    python -m daxa_xmm.pipeline.plan [SUMMARY] [--out DIR] [--raw DIR] [--sas-version 22.1.0]

SUMMARY is an odfingest summary file (``{rev}_{obsid}_SCX00000SUM.SAS``); without one the
synthetic example shipped in ``daxa_xmm/data`` is used. Each call is printed with its argv
(shell-quoted with :func:`shlex.join`, so it can be pasted into a shell with SAS set up),
its working folder, its environment and its outputs, step by step in pipeline order.
"""

from __future__ import annotations

__all__ = ["EXAMPLE_SUMMARY", "daxa_step_plans", "format_plan", "main"]

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from daxa_xmm.daxa import plans as daxa_plans
from daxa_xmm.daxa.archive import Archive
from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.stages import DAXA_STEPS
from daxa_xmm.sas.calls import StepPlan

#: The synthetic example summary shipped with the package (invented ObsID 0123456789).
EXAMPLE_SUMMARY = Path(__file__).resolve().parents[1] / "data" / "0001_0123456789_SCX00000SUM.SAS"


def daxa_step_plans(archive: Archive) -> list[tuple[str, StepPlan]]:
    """Every DAXA step's plan for ``archive``, in pipeline order, with its DAXA name."""
    return [(name, getattr(daxa_plans, name)(archive)) for name in DAXA_STEPS]


def format_plan(plans: list[tuple[str, StepPlan]]) -> str:
    """Human-readable text of the plans: one block per call."""
    lines: list[str] = []
    for name, plan in plans:
        lines.append(f"=== {name}: {plan.process_message}")
        for obsid, infos in plan.extra_info.items():
            if "error" in infos:
                lines.append(f"  {obsid}: NOT PLANNED: {infos['error']}")
        for obsid, units in plan.commands.items():
            for unit, calls in units.items():
                info = plan.extra_info.get(obsid, {}).get(unit, {})
                if not calls:
                    if "error" in info:
                        lines.append(f"  [{unit}] NOT PLANNED: {info['error']}")
                    else:
                        lines.append(f"  [{unit}] no call")
                    continue
                for call in calls:
                    if call.placed_from is not None:
                        lines.append(f"  [{unit}] {call.step}: single sub-exposure, copied not merged:")
                        lines.append(f"      {call.placed_from} -> {call.products[0]}")
                        continue
                    lines.append(f"  [{unit}] {call.step}")
                    lines.append(f"      $ {shlex.join(call.argv)}")
                    lines.append(f"      cwd: {call.cwd}{'' if call.clean_cwd else '  (reused, not cleaned)'}")
                    for k, v in sorted(call.env.items()):
                        lines.append(f"      env: {k}={v}")
                    for o in call.outputs:
                        lines.append(f"      out: {o.name} -> {o.dest if o.dest else '(intermediate, stays in cwd)'}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m daxa_xmm.pipeline.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", nargs="?", type=Path, default=EXAMPLE_SUMMARY, help="odfingest summary file")
    parser.add_argument("--out", type=Path, default=Path("processed"), help="output root the paths are shown under")
    parser.add_argument("--raw", type=Path, default=Path("archive"), help="raw archive root (one folder per ObsID)")
    parser.add_argument("--sas-version", default="22.1.0", help="SAS release to build the calls for")
    args = parser.parse_args(argv)
    try:
        from daxa_xmm.odf.summary import read_observation_record

        obsid = read_observation_record(args.summary).obsid
        archive = Archive(
            ArchiveLayout(args.raw, args.out), args.sas_version, obsids=[obsid], summary_paths={obsid: args.summary}
        )
        text = format_plan(daxa_step_plans(archive))
    except (DaxaXmmError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# plan for ObsID {obsid}, SAS {archive.sas_version}, summary {args.summary} (nothing is run)\n")
    print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
