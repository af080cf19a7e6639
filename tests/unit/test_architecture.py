"""What the core's shape promises, checked in a fresh interpreter (imports are cached in this one)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import daxa_xmm

CORE = Path(daxa_xmm.__file__).parent


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``statement``."""
    out = subprocess.run([sys.executable, "-c", f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"],
                         check=True, capture_output=True, text=True).stdout
    return set(out.split())


def _imports(path: Path) -> set[str]:
    """Every daxa_xmm module ``path`` imports, those only for type checking included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("daxa_xmm"):
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("daxa_xmm")}
    return found


def test_the_table_and_its_lines_do_not_import_the_config_whose_step_names_they_give() -> None:
    """The config's step names and sections come from the table: the table, and the step
    modules that declare its lines, must not import the config (not even for types)."""
    table = [CORE / "pipeline" / "stages.py", *sorted((CORE / "steps").glob("*.py"))]
    importing = [p.name for p in table if "daxa_xmm.config" in _imports(p)]
    assert not importing


def test_the_core_imports_no_prefect() -> None:
    loaded = _modules_after("import daxa_xmm.config, daxa_xmm.pipeline.observation_run, daxa_xmm.daxa.plans, "
                            "daxa_xmm.report.archive_report, daxa_xmm.standin.cli")
    assert not {m for m in loaded if m == "prefect" or m.startswith("prefect.")}


def test_importing_the_flows_changes_nothing_until_a_flow_runs() -> None:
    """A notebook's ``import`` must leave the user's environment and Prefect's clients as they
    were: the settings and the client hook are applied when a run starts."""
    code = ("import os, flows.daxa_steps, flows.process_archive, deployments.flow\n"
            "from prefect.client import base\n"
            "print(os.environ.get('PREFECT_LOGGING_LEVEL'), os.environ.get('DO_NOT_TRACK'),"
            " getattr(base.PrefectHttpxSyncClient.__init__, 'daxa_xmm_hooked', False))")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_LOGGING_LEVEL", "DO_NOT_TRACK")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env,
                         cwd=CORE.parent).stdout.split()
    assert out == ["None", "None", "False"]
