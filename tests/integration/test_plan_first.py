"""Plan first (daxa_xmm/pipeline/uptodate.py): a re-run reads every manifest before Prefect runs, and
an observation with nothing to redo gets a line in the report, not a subflow.

The check must agree with the flow call for call: an observation it calls finished must be
one the flow would not touch, and any change the flow would act on must send the
observation to its subflow.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline import uptodate
from daxa_xmm.pipeline.uptodate import UP_TO_DATE, finished_observations
from daxa_xmm.sas.environment import detect_sas
from daxa_xmm.standin.synth import write_archive
from flows import process_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, config

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_finished_observations_get_no_subflow_and_changed_ones_do(tmp_path: Path, standin,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    # MOS only, cleaned with the CCDs emanom accepted: the flow's longest chain
    cfg = config(tmp_path, instruments=["M1", "M2"], clean={"filt_mos_anom_state": True})
    run_archive(cfg)
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    sas = detect_sas().version.raw
    assert finished_observations(layout, [a, b], cfg, sas) == [a, b]

    # the flow agrees call for call: with the check bypassed, its subflows make no call
    with monkeypatch.context() as patch:
        patch.setattr(process_archive, "finished_observations", lambda *args, **kw: [])
        standin.reset_log()
        again = run_archive(cfg)
    assert standin.calls() == [] and [o["message"] for o in again["observations"]] == ["", ""]

    # nothing changed: a line in the report each, no subflow
    quiet = run_archive(cfg)
    assert [(o["status"], o["message"]) for o in quiet["observations"]] == [("ok", UP_TO_DATE)] * 2
    assert standin.calls() == []

    # a lost product: that observation's subflow remakes it and what reads it, nothing else
    lost = layout.clean_events(b, "M1", "S001")
    lost.unlink()
    assert finished_observations(layout, [a, b], cfg, sas) == [a]
    redo = run_archive(cfg)
    assert [o["message"] for o in redo["observations"]] == [UP_TO_DATE, ""]
    keys = Counter(k.split("/")[0][:12] for k in call_keys(standin.calls(), cfg.out_root))
    assert set(keys) == {f"{b}M1"} and lost.is_file(), keys

    # a changed setting, or a forced step: every observation goes to its subflow
    assert finished_observations(layout, [a, b], config(tmp_path, instruments=["M1", "M2"]), sas) == []
    assert finished_observations(layout, [a, b], cfg.model_copy(update={"force": ["espfilt"]}), sas) == []
    # an instrument left out needs nothing more of what was made
    assert finished_observations(layout, [a, b], config(tmp_path, instruments=["M1"], clean={"filt_mos_anom_state": True}), sas) == [a, b]

    # newer calibration in SAS_CCFPATH: every observation's index is stale; the folders are
    # listed once for the whole check, not once per observation
    listings = []
    real_listing = uptodate.available_ccfs
    monkeypatch.setattr(uptodate, "available_ccfs", lambda folders: listings.append(folders) or real_listing(folders))
    assert finished_observations(layout, [a, b], cfg, sas) == [a, b] and len(listings) == 1
    ccfdir = Path(os.environ["SAS_CCFPATH"].split(os.pathsep)[0])
    newest = max(ccfdir.glob("XMM_BORESIGHT_*.CCF"))
    issue = int(newest.stem.rsplit("_", 1)[1])
    shutil.copy(newest, ccfdir / f"XMM_BORESIGHT_{issue + 1:04d}.CCF")  # its header: valid since before both
    assert finished_observations(layout, [a, b], cfg, sas) == [] and len(listings) == 2
