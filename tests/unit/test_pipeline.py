"""The calls an observation needs, from a ProcessingConfig (what the flow runs and --dry-run prints)."""

from __future__ import annotations

import shutil
from pathlib import Path

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline import plan_observation
from daxa_xmm.plan import EXAMPLE_SUMMARY
from daxa_xmm.sasversion import parse_sas_version

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
