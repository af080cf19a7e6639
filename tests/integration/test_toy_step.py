"""A stage inserted into the pipeline's table is planned, run, reported and resumed as any other.

A toy step, ``evstats`` (which observation each cleaned list is of, and its number of
events), is inserted into the table of this process after the cleaning, with its stand-in
task on the stand-in's PATH. What this test holds is the run's behaviour with the new line:
the chains end with it, what reads it re-runs, a lost product re-runs it alone. That a step
is added by its module and one table line only, known to the command line, the config
file, the form and DAXA's records, is :mod:`tests.integration.test_new_step`'s (a copy of
the code, edited, in child processes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import EPIC
from daxa_xmm.pipeline import stages
from daxa_xmm.pipeline.uptodate import UP_TO_DATE
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.standin.synth import write_archive
from daxa_xmm.steps._common import work_dir
from daxa_xmm.steps.spec import Stage, StageInput
from flows.process_archive import plan_archive, run_archive
from tests.integration.flowkit import call_keys, config, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")

# --- the toy step's module: its argv builder and declared output ------------------------------

def evstats_calls(si: StageInput) -> list[SasCall]:
    """``evstats table=<cleaned list>``, writing ``evstats.txt`` (its OBS_ID and number of events)."""
    unit = si.the_unit
    table = si.layout.clean_events(unit.obsid, unit.inst, unit.exp_id)
    return [SasCall(
        step="evstats", obsid=unit.obsid, unit=unit.label, argv=("evstats", param("table", table)),
        cwd=work_dir(si.layout, unit.obsid, unit.label, "evstats"),
        outputs=(OutputSpec("evstats.txt", si.layout.obs_dir(unit.obsid) / f"{unit.label}_evstats.txt"),),
        timeout_s=si.timeout_s,
    )]


# --- its stand-in task: the OBS_ID and EVENTS rows of the table it is given ------------------

_STANDIN_TASK = """#!{python}
import sys
from astropy.io import fits
args = dict(a.split("=", 1) for a in sys.argv[1:])
with fits.open(args["table"]) as hdus:
    obsid, n = hdus[0].header["OBS_ID"], len(hdus["EVENTS"].data)
open("evstats.txt", "w").write(f"{{obsid}} {{n}}\\n")
"""


def _add_toy_step(monkeypatch: pytest.MonkeyPatch, standin) -> None:
    exe = standin.root / "bin" / "evstats"
    exe.write_text(_STANDIN_TASK.format(python=sys.executable))
    exe.chmod(0o755)
    # the one table line: after the cleaning, for every EPIC sub-exposure
    after = next(i for i, s in enumerate(stages.PIPELINE) if s.name == "cleaned_evt_lists") + 1
    line = Stage("evstats", "unit", evstats_calls, lambda si: si.the_inst in EPIC)
    monkeypatch.setattr(stages, "PIPELINE", (*stages.PIPELINE[:after], line, *stages.PIPELINE[after:]))


def test_a_step_added_by_one_table_line_is_planned_run_reported_and_resumed(
        tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["PN", "M1"])
    run_archive(cfg)  # without the toy step
    standin.reset_log()
    _add_toy_step(monkeypatch, standin)

    # planned: each EPIC unit's chain ends with it, after the cleaning
    plan = plan_archive(cfg, "22.1.0").splitlines()
    steps = [line.strip("[]").split()[0] for line in plan if line.startswith("[")]
    assert steps.count("evstats") == 2
    for k, step in enumerate(steps):
        if step == "evstats":
            assert steps[k - 1].startswith("cleaned_evt_lists"), steps

    # run: the new step on each unit, and what reads the units' chains (the merges, the
    # images) again, since their inputs now include it; nothing before it
    report = run_archive(cfg)
    records = manifest_records(cfg.out_root, obsid)
    toy = {k: r for k, r in records.items() if k.endswith("/evstats")}
    assert sorted(toy) == [f"{obsid}M1S001/evstats", f"{obsid}PNS003/evstats"], sorted(toy)
    assert all(r["status"] == "ok" for r in toy.values())
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    # it read the unit's cleaned list (the stand-in's fast mode: a placeholder of that name)
    read_obsid, n_events = (layout.obs_dir(obsid) / f"{obsid}PNS003_evstats.txt").read_text().split()
    assert read_obsid == obsid and int(n_events) >= 0
    # (the toy task does not write the stand-in's call log: the manifest above says it ran)
    ran = {k.split("/")[1] for k in call_keys(standin.calls(), cfg.out_root)}
    assert ran and not ran & {"cif_build", "odf_ingest", "epchain", "emchain", "emanom", "espfilt",
                              "cleaned_evt_lists"}, ran

    # reported: its rows in the archive report, like any step's
    assert report["observations"][0]["status"] == "ok"
    saved = json.loads((cfg.out_root / "report.json").read_text())
    rows = [r for o in saved["observations"] for r in o["rows"] if r["step"] == "evstats"]
    assert {(r["unit"], r["status"]) for r in rows} == {(f"{obsid}M1S001", "ok"), (f"{obsid}PNS003", "ok")}

    # resumed: finished, it is up to date; its product lost, only it and what reads it run
    standin.reset_log()
    assert run_archive(cfg)["observations"][0]["message"] == UP_TO_DATE
    (layout.obs_dir(obsid) / f"{obsid}M1S001_evstats.txt").unlink()
    run_archive(cfg)
    after = manifest_records(cfg.out_root, obsid)
    remade = {k for k in after if after[k]["started"] != records[k]["started"]}
    assert f"{obsid}M1S001/evstats" in remade and f"{obsid}PNS003/evstats" not in remade
    assert not {k.split("/")[1] for k in remade} & {"epchain", "emchain", "emanom", "espfilt", "cleaned_evt_lists"}, remade
