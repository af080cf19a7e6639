"""The head start (daxa_xmm/pipeline/head_start.py): a local run's observations start while Prefect's
server starts, and the flow takes over without running any call twice."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.head_start import HeadStart, taken, wait_for
from daxa_xmm.pipeline.observation_run import QUIET
from daxa_xmm.pipeline.step_run import observation_context
from daxa_xmm.pipeline.uptodate import UP_TO_DATE
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.environment import detect_sas
from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, config, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _head(cfg, obsids: list[str], watch=QUIET) -> HeadStart:
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    sas = detect_sas().version.raw
    return HeadStart(layout, cfg, obsids, lambda o: observation_context(o, cfg, layout, sas), watch=watch)


class _Watch:
    """Tells the test when an observation ends (and runs ``at_call`` as each call is due)."""

    def __init__(self, at_call=lambda: None) -> None:
        self.ended = threading.Event()
        self.at_call = at_call

    def observation_started(self, obsid: str) -> None:
        pass

    def observation_finished(self, obsid: str) -> None:
        self.ended.set()

    def started(self, obsid: str, call: SasCall) -> None:
        self.at_call()

    def finished(self, obsid: str, call: SasCall) -> None:
        pass


def test_the_flow_reports_what_the_head_start_ran_and_runs_no_call_twice(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 3, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1)  # two observations at once
    standin.durations({"cifbuild": 1.0})  # the next ones are still in a call when the flow begins
    watch = _Watch()
    head = _head(cfg, obsids, watch).start()
    try:
        assert watch.ended.wait(120)  # one observation finished before the flow began: not "up to date"
        result = run_archive(cfg)  # closes the head start when it begins; the flow waits for what it took
    finally:
        head.join()
    outcomes = {o["obsid"]: o for o in result["observations"]}
    assert [o["status"] for o in result["observations"]] == ["ok"] * 3, result
    keys = Counter(call_keys(standin.calls(), cfg.out_root))
    assert keys and set(keys.values()) == {1}, keys  # every call once, whoever ran it
    assert head.started[:2] == obsids[:2]  # in the archive's order, as many at once as the flow would
    for obsid in head.started:  # the whole observation, reported with the head start's outcome
        assert outcomes[obsid]["units"] == [f"{obsid}M1S001"] and outcomes[obsid]["message"] != UP_TO_DATE, outcomes
        recs = manifest_records(cfg.out_root, obsid)
        assert all(recs[k]["status"] == "ok" for k in recs), recs
    assert not taken(ArchiveLayout(cfg.archive, cfg.out_root))  # joined: forgotten


def test_a_closed_head_start_takes_no_new_observation(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 2, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1)
    head = _head(cfg, obsids)
    head.close()
    head.start().join()
    assert head.started == [] and standin.calls() == []
    assert wait_for(ArchiveLayout(cfg.archive, cfg.out_root), obsids[0]) is None  # nothing to wait for


def test_an_abandoned_head_start_starts_no_call_and_records_the_rest_as_interrupted(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1)
    head = _head(cfg, obsids, _Watch(at_call=lambda: head.abandon()))  # Prefect failed as a call was due
    head.start()
    head.join()
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    assert standin.calls() == []
    recs = manifest_records(cfg.out_root, obsids[0])
    # the refused call never ran (no record); what follows it is recorded as interrupted
    assert {k: r["status"] for k, r in recs.items()} == {f"{obsids[0]}/odf_ingest": "interrupted"}, recs
    assert head.started == obsids and not taken(layout)


def test_the_head_start_tries_a_crashed_call_again_as_the_flow_would(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], num_cores=1, retries=1, retry_delay="0.1 s")
    standin.faults([{"task": "espfilt", "match": "", "action": "crash", "times": 1}])  # SIGKILL: transient
    _head(cfg, obsids).start().join()
    assert [c["task"] for c in standin.calls()].count("espfilt") == 2
    espfilt = manifest_records(cfg.out_root, obsids[0])[f"{obsids[0]}M1S001/espfilt"]
    assert espfilt["status"] == "ok" and espfilt["attempts"] == 2, espfilt
