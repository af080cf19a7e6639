"""The calls an observation needs, from a ProcessingConfig (what the flow runs and --dry-run prints)."""

from __future__ import annotations

import shutil
from pathlib import Path

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.plan import EXAMPLE_SUMMARY
from daxa_xmm.pipeline.walk import plan_observation
from daxa_xmm.sas.version import parse_sas_version

OBSID = "0123456789"


def _layout(tmp_path: Path, with_summary: bool) -> ArchiveLayout:
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    odf = tmp_path / "raw" / OBSID
    odf.mkdir(parents=True)
    # the ODF's SUM.ASC carries the same OBSERVATION record as the odfingest summary
    shutil.copy(EXAMPLE_SUMMARY, odf / f"0001_{OBSID}_SCX00000SUM.ASC")
    if with_summary:
        layout.obs_dir(OBSID).mkdir(parents=True)
        shutil.copy(EXAMPLE_SUMMARY, layout.summary(OBSID, "0001"))
    return layout


def _tasks(plan: list) -> list[str]:
    return [call.task for _, call in plan if call is not None]


def test_without_a_summary_the_plan_stops_after_odfingest_and_says_why(tmp_path: Path) -> None:
    layout = _layout(tmp_path, with_summary=False)
    plan = plan_observation(layout, OBSID, ProcessingConfig(archive=tmp_path / "raw"), parse_sas_version("22.1.0"))
    assert _tasks(plan) == ["cifbuild", "odfingest"]
    assert "odfingest has written its summary" in plan[-1][0]


def test_settings_shape_the_plan(tmp_path: Path) -> None:
    layout = _layout(tmp_path, with_summary=True)
    v22 = parse_sas_version("22.1.0")
    everything = _tasks(plan_observation(layout, OBSID, ProcessingConfig(archive=tmp_path / "raw"), v22))
    assert {"epchain", "emchain", "emanom", "espfilt", "evselect", "rgsproc", "eexpmap"} <= set(everything)

    mos_only = ProcessingConfig(archive=tmp_path / "raw", instruments=["M1"], images={"bands": [["0.5 keV", "2 keV"]]})
    tasks = _tasks(plan_observation(layout, OBSID, mos_only, v22))
    assert "epchain" not in tasks and "rgsproc" not in tasks
    assert tasks.count("eexpmap") == 1  # one band, one instrument

    old_sas = _tasks(plan_observation(layout, OBSID, mos_only, parse_sas_version("18.0.0")))
    assert "emanom" in tasks and "emanom" not in old_sas  # emanom needs SAS >= 19

    scheduled = ProcessingConfig(archive=tmp_path / "raw", instruments=["PN"], process_unscheduled=False)
    pn = [c for _, c in plan_observation(layout, OBSID, scheduled, v22) if c is not None and c.task == "epchain"]
    assert pn and all("schedule=S" in c.argv for c in pn)


def test_a_bad_odf_is_a_note_not_an_exception(tmp_path: Path) -> None:
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    (tmp_path / "raw" / OBSID).mkdir(parents=True)
    plan = plan_observation(layout, OBSID, ProcessingConfig(archive=tmp_path / "raw"), parse_sas_version("22.1.0"))
    assert plan[0][1] is None and OBSID in plan[0][0]


def test_merges_cover_the_all_good_lists_and_images_use_the_runs_selection(tmp_path: Path) -> None:
    layout = _layout(tmp_path, with_summary=True)
    pn_expr = "(PATTERN <= 12) && (FLAG .eq. 0)"
    cfg = ProcessingConfig(archive=tmp_path / "raw", instruments=["PN", "M1"], clean={"pn_filt_expr": [pn_expr]})
    calls = [c for _, c in plan_observation(layout, OBSID, cfg, parse_sas_version("22.1.0")) if c is not None]
    # DAXA merges four streams; a single sub-exposure's is copied (a placement), not merged
    merges = [c for c in calls if c.step.startswith("merge_subexposures") and c.outputs[0].dest is not None]
    merged = {Path(c.outputs[0].dest).name: c for c in merges}
    assert merged[f"{OBSID}_pn_merged_allevc_evts.fits"].task == "merge"
    assert merged[f"{OBSID}_pn_merged_allevcoot_evts.fits"].task == "merge"
    assert merged[f"{OBSID}_mos1_merged_allevc_evts.fits"].task == "copy"  # M1 has one sub-exposure
    assert all("/background/" in str(c.outputs[0].dest) for n, c in merged.items() if "allevc" in n)
    pn_images = [c for c in calls if c.task == "evselect" and c.step == "image" and "PN" in c.unit]
    assert pn_images and all(f"expression={pn_expr} && (PI in" in " ".join(c.argv) for c in pn_images)
    mos_images = [c for c in calls if c.task == "evselect" and c.step == "image" and "M1" in c.unit]
    assert mos_images and all("expression=#XMMEA_EM && (PATTERN <= 12)" in " ".join(c.argv) for c in mos_images)
    # no PN out-of-time all-good list before SAS 20
    old = [c for _, c in plan_observation(layout, OBSID, cfg, parse_sas_version("19.0.0")) if c is not None]
    old_notes = " ".join(n for n, c in plan_observation(layout, OBSID, cfg, parse_sas_version("19.0.0")) if c is None)
    assert "allevcoot" not in old_notes and not any("allevcoot" in " ".join(c.argv) for c in old)
