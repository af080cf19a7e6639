"""Adding a SAS step is its module, one line of the pipeline's table and its stand-in task.

A contributor's change, made for real on a copy of the code: a toy step ``evstats`` (the
number of events of each cleaned list, with one setting, ``min_events``, and a DAXA name)
is its module ``daxa_xmm/steps/evstats.py``, one line in ``daxa_xmm/pipeline/stages.py``,
and its stand-in task (its implementation, its line in the stand-in's table and its
parameters). Nothing else is edited, and the copy's command line, config file, Prefect
form, ``--steps``/``--force``, plan, report and DAXA records all know the new step.

The runs are the command line's (``python -m flows.process_archive``) in child processes
whose imports are the copy's, so what is derived at import time is derived from the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from tests.integration.flowkit import REPO, cli_env, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")

_STEP_MODULE = '''"""evstats: how many events each cleaned list holds (a toy step)."""

from __future__ import annotations

__all__ = ["STAGE", "EvstatsConfig", "evstats_calls"]

from pydantic import Field

from daxa_xmm.odf.models import EPIC
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.steps._common import FrozenConfig, work_dir
from daxa_xmm.steps.spec import DaxaFunction, Section, Stage, StageInput, on_instruments


class EvstatsConfig(FrozenConfig):
    min_events: int = Field(0, ge=0, description="fewest events a cleaned list may hold")


def evstats_calls(si: StageInput) -> list[SasCall]:
    unit, cfg = si.the_unit, si.config.section(EvstatsConfig)
    table = si.layout.clean_events(unit.obsid, unit.inst, unit.exp_id)
    return [SasCall(
        step="evstats", obsid=unit.obsid, unit=unit.label,
        argv=("evstats", param("table", table), param("minevents", cfg.min_events)),
        cwd=work_dir(si.layout, unit.obsid, unit.label, "evstats"),
        outputs=(OutputSpec("evstats.txt", si.layout.obs_dir(unit.obsid) / f"{unit.label}_evstats.txt"),),
        timeout_s=si.timeout_s,
    )]


STAGE = Stage("evstats", "unit", evstats_calls, on_instruments(*EPIC), sas_tasks=("evstats",),
              section=Section("evstats", EvstatsConfig, "event statistics (evstats)"),
              daxa=(DaxaFunction("evstats", needs=("cleaned_evt_lists",)),))
'''

_STANDIN_TASK = '''"""The stand-in's evstats: the OBS_ID and number of events of the table it is given."""

from astropy.io import fits

from daxa_xmm.standin.common import SasExit, TaskContext, atomic_path


def evstats(args: dict[str, str], ctx: TaskContext) -> int:
    table = ctx.require_file("table", ctx.param("table"))
    with fits.open(table) as hdus:
        obsid, n = hdus[0].header["OBS_ID"], len(hdus["EVENTS"].data)
    if n < int(ctx.param("minevents")):
        raise SasExit("tooFewEvents", f"{n} events, fewer than minevents")
    with atomic_path(ctx.cwd / "evstats.txt") as tmp:
        tmp.write_text(f"{obsid} {n} {ctx.param('minevents')}\\n")
    return 0
'''


def _edit(path: Path, after: str, line: str) -> None:
    """Insert ``line`` after the first line of ``path`` that starts with ``after``."""
    lines = path.read_text().splitlines(keepends=True)
    k = next(i for i, text in enumerate(lines) if text.startswith(after))
    path.write_text("".join([*lines[:k + 1], line, *lines[k + 1:]]))


def _contributors_copy(root: Path) -> Path:
    """The code with the new step added exactly as the README's recipe says."""
    for package in ("daxa_xmm", "flows", "deployments", "tasks"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    core = root / "daxa_xmm"
    (core / "steps" / "evstats.py").write_text(_STEP_MODULE)
    # the table's line (and its import)
    _edit(core / "pipeline" / "stages.py", "from daxa_xmm.steps import", "from daxa_xmm.steps import evstats\n")
    _edit(core / "pipeline" / "stages.py", "    clean_events.STAGE,", "    evstats.STAGE,\n")
    # the stand-in task: its implementation, its line and its parameters
    (core / "standin" / "tasks_evstats.py").write_text(_STANDIN_TASK)
    _edit(core / "standin" / "tasks.py", "TASKS: dict[str, Task] = {",
          '    "evstats": Task("daxa_xmm.standin.tasks_evstats:evstats", "1.0"),\n')
    _edit(core / "standin" / "params.py", "PARAMS: dict[str, dict[str, str]] = {",
          '    "evstats": {"table": "", "minevents": "0"},\n')
    return root


def _python(code: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flows.process_archive", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_step_added_by_its_module_one_table_line_and_its_standin_task_is_known_everywhere(tmp_path: Path) -> None:
    code = _contributors_copy(tmp_path / "code")
    env = cli_env(PYTHONPATH=str(code), DAXA_STANDIN_FAST="1", DAXA_STANDIN_LOG=str(tmp_path / "calls.jsonl"),
                  DAXA_STANDIN_STATE=str(tmp_path / "state"), DAXA_XMM_SLOTS_DIR=str(tmp_path / "slots"))
    env.update(json.loads(_python(
        f"import json; from daxa_xmm.standin.install import install_standin; "
        f"print(json.dumps(install_standin({str(tmp_path / 'sas')!r})))", env, tmp_path)))
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    settings = tmp_path / "run.yaml"
    settings.write_text("instruments: [PN, M1]\nevstats:\n  min_events: 0\n")
    base = [str(tmp_path / "archive"), "--out", str(out), "--config", str(settings)]

    # the command line: its option, described once, and a step --steps/--force accept
    helped = _cli(["--help"], env, tmp_path)
    assert "--evstats.min-events" in helped.stdout and "fewest events a cleaned list may hold" in helped.stdout
    # the Prefect form: its section with the setting's description
    form = json.loads(_python("import json; from deployments.flow import archive_flow; "
                              "print(json.dumps(archive_flow.parameters.model_dump()))", env, tmp_path))
    assert "evstats" in form["properties"], sorted(form["properties"])
    assert "fewest events" in json.dumps(form["definitions"])

    # run: the config file's section, with the command line's value over it
    run = _cli([*base, "--evstats.min-events", "0", "--disable-progress"], env, tmp_path)
    assert run.returncode == 0, run.stderr
    records = manifest_records(out, obsid)
    toy = {k: r for k, r in records.items() if k.endswith("/evstats")}
    assert sorted(toy) == [f"{obsid}M1S001/evstats", f"{obsid}PNS003/evstats"]
    assert all(r["status"] == "ok" for r in toy.values())
    read_obsid, _, minimum = (out / obsid / f"{obsid}PNS003_evstats.txt").read_text().split()
    assert read_obsid == obsid and minimum == "0"
    report = json.loads((out / "report.json").read_text())
    rows = {(r["unit"], r["status"]) for o in report["observations"] for r in o["rows"] if r["step"] == "evstats"}
    assert rows == {(f"{obsid}M1S001", "ok"), (f"{obsid}PNS003", "ok")}

    # planned (the units are known once odfingest ran): after the cleaning of each EPIC unit
    plan = _cli([*base, "--dry-run"], env, tmp_path)
    assert plan.returncode == 0, plan.stderr
    planned = [line.split()[1] for line in plan.stdout.splitlines() if line.strip().startswith("$ ")]
    assert planned.count("evstats") == 2, plan.stdout
    assert all(planned[k - 1] == "evselect" for k, task in enumerate(planned) if task == "evstats"), planned

    # its DAXA records, under its DAXA name
    success = json.loads(_python(
        f"import json; from flows.daxa_steps import Archive; "
        f"a = Archive.from_folders({str(tmp_path / 'archive')!r}, {str(out)!r}); "
        f"print(json.dumps(a.process_success))", env, tmp_path))
    assert success["xmm_pointed"]["evstats"] == {f"{obsid}M1S001": True, f"{obsid}PNS003": True}

    # a changed setting re-runs the step alone; --steps and --force take its name
    (tmp_path / "calls.jsonl").unlink()
    again = _cli([*base, "--evstats.min-events", "2", "--steps", "evstats", "--force", "evstats",
                  "--disable-progress"], env, tmp_path)
    calls = [json.loads(line)["task"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert set(calls) - {"sasversion"} == {"evstats"}, calls
    # the fast stand-in's cleaned lists hold one event (a placeholder that passes the data-quality
    # checks): with min_events 2 the toy task fails
    assert again.returncode != 0
    after = manifest_records(out, obsid)
    assert {after[k]["status"] for k in toy} == {"failed"}
