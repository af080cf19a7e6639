"""The head start (daxa_xmm/head_start.py): a local run's first SAS calls start while Prefect's
server starts, and the flow takes over without running any of them twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from daxa_xmm.head_start import HeadStart, wait_for
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.sasenv import detect_sas
from daxa_xmm.step_run import observation_context
from daxa_xmm.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, config, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_the_flow_takes_over_a_head_start_without_running_a_call_twice(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 3, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1)
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    sas = detect_sas().version.raw
    standin.durations({"cifbuild": 1.0})  # the flow begins while the head start is in a call
    head = HeadStart(layout, cfg, sas, obsids, lambda o: observation_context(o, cfg, layout, sas)).start()
    try:
        result = run_archive(cfg)  # closes the head start when it begins; each subflow waits for it
    finally:
        head.join()
    assert [o["status"] for o in result["observations"]] == ["ok"] * 3, result
    keys = Counter(call_keys(standin.calls(), cfg.out_root))
    # every call once: the head start's cifbuild and odfingest are not run again by the flow
    assert keys and set(keys.values()) == {1}, keys
    assert head.started and head.started[0] == obsids[0]
    for obsid in head.started:
        recs = manifest_records(cfg.out_root, obsid)
        assert recs[f"{obsid}/cif_build"]["status"] == recs[f"{obsid}/odf_ingest"]["status"] == "ok"


def test_a_closed_head_start_takes_no_new_observation(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 2, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1)
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    sas = detect_sas().version.raw
    head = HeadStart(layout, cfg, sas, obsids, lambda o: observation_context(o, cfg, layout, sas))
    head.close()
    head.start().join()
    assert head.started == [] and standin.calls() == []
    wait_for(layout, obsids[0])  # nothing to wait for: returns at once
