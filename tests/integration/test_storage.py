"""The storage policy (``--storage all|products|final``, daxa_xmm/pipeline/storage.py, issue 33.2):
what each keeps, a leaner re-run that frees space and redoes nothing, and a re-run that needs
a removed list remaking exactly it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_odf
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, config, manifest_records

A = "0100000001"
pytestmark = pytest.mark.slow


def _archive(tmp_path: Path, gzip: bool = False) -> tuple[ArchiveLayout, dict[Path, float]]:
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(ExposureSpec("PN", "S003"), ExposureSpec("M1", "S001"))),
              gzip=gzip)
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "processed")
    return layout, _files(tmp_path / "archive")


def _files(root: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _chain_lists(layout: ArchiveLayout) -> list[Path]:
    return [layout.pn_events(A, "S003"), layout.pn_events(A, "S003", oot=True), layout.mos_events(A, "M1", "S001")]


def _kept(layout: ArchiveLayout) -> list[Path]:
    """What every policy keeps: the cleaned lists, the merged lists, images, the summary, the index."""
    return [layout.clean_events(A, "PN", "S003"), layout.clean_events(A, "M1", "S001"),
            layout.merged_events(A, "PN"), layout.merged_events(A, "M1"), layout.ccf(A),
            *sorted(layout.images_dir(A).glob("*.fits")), layout.manifest(A)]


@pytest.mark.parametrize("policy", ["all", "products", "final"])
def test_each_policy_keeps_what_it_says_and_never_touches_the_archive(tmp_path: Path, standin, policy: str) -> None:
    layout, odf = _archive(tmp_path, gzip=True)
    result = run_archive(config(tmp_path, storage=policy))
    assert [o["status"] for o in result["observations"]] == ["ok"], result
    assert _files(tmp_path / "archive") == odf  # the archive's ODFs: not one changed or removed
    assert all(p.is_file() for p in _kept(layout)) and len(_kept(layout)) > 7
    work, unpacked = layout.obs_dir(A) / "work", layout.odf_unpacked_dir(A)
    assert work.is_dir() == (policy == "all")
    # the unpacked copy: every constituent (the plain ones linked) under ``all``, the summary alone otherwise
    every = sorted(p.name.removesuffix(".gz") for p in odf)
    assert sorted(p.name for p in unpacked.iterdir()) == (every if policy == "all"
                                                           else [n for n in every if n.endswith("SUM.ASC")])
    assert all(p.is_file() for p in _chain_lists(layout)) == (policy != "final")
    assert layout.attitude(A).is_file()  # eexpmap reads it for any new band: kept by every policy
    recs = manifest_records(layout.out_root, A)
    assert {r["status"] for r in recs.values()} == {"ok"}
    removed = {k for k, r in recs.items() if r.get("removed")}
    assert removed == (set() if policy != "final" else
                       {f"{A}PNS003/epchain_oot", f"{A}PNS003/epchain", f"{A}M1S001/emchain"}), removed


def test_a_leaner_rerun_frees_space_redoing_nothing_and_a_failed_observation_keeps_all(tmp_path: Path, standin) -> None:
    layout, _ = _archive(tmp_path)
    assert run_archive(config(tmp_path))["observations"][0]["status"] == "ok"
    assert all(p.is_file() for p in _chain_lists(layout))
    standin.reset_log()
    again = run_archive(config(tmp_path, storage="final"))
    assert again["observations"][0]["status"] == "ok", again
    assert standin.calls() == []  # up to date: nothing redone, only space freed
    assert not any(p.exists() for p in _chain_lists(layout)) and all(p.is_file() for p in _kept(layout))
    assert run_archive(config(tmp_path, storage="final"))["observations"][0]["status"] == "ok"
    assert standin.calls() == []  # what was removed is not asked for again
    # an observation with a failure keeps everything: a resume reads it
    standin.faults([{"task": "evselect", "match": f"{A}M1-0.50-2.00keV-image", "action": "fail",
                     "name": "noCounts", "message": "injected"}])
    bad = run_archive(config(tmp_path, storage="final", force=["emchain"]))
    assert bad["observations"][0]["status"] == "partial", bad
    assert layout.mos_events(A, "M1", "S001").is_file() and (layout.obs_dir(A) / "work").is_dir()


def test_a_rerun_that_needs_a_removed_list_remakes_exactly_it(tmp_path: Path, standin) -> None:
    layout, _ = _archive(tmp_path)
    assert run_archive(config(tmp_path, storage="final"))["observations"][0]["status"] == "ok"
    before = manifest_records(layout.out_root, A)
    standin.reset_log()
    # the cleaning must run again (a forced step), and it reads the chains' lists, removed
    redo = run_archive(config(tmp_path, storage="final", force=["cleaned_evt_lists"]))
    assert redo["observations"][0]["status"] == "ok", redo
    keys = Counter(k.split("/", 1)[1] for k in call_keys(standin.calls(), layout.out_root))
    # the lists are remade (with emanom, which writes into MOS's), then what the forced step
    # remakes as always (each one-sub-exposure merge is a copy, recorded but not a SAS call);
    # espfilt, which read the same lists, is not redone
    assert keys == Counter({"epchain_oot": 1, "epchain": 1, "emchain": 1, "emanom": 1, "cleaned_evt_lists": 2,
                            "cleaned_evt_lists_oot": 1, "image": 2, "expmap": 2}), keys
    after = manifest_records(layout.out_root, A)
    assert after[f"{A}PN-clean/merge_subexposures"]["ended"] != before[f"{A}PN-clean/merge_subexposures"]["ended"]
    assert {r["status"] for r in after.values()} == {"ok"}  # nothing made from the lists went stale
    for key in (f"{A}PNS003/espfilt", f"{A}M1S001/espfilt", f"{A}/odf_ingest"):
        assert after[key]["ended"] == before[key]["ended"], key
    # the remade lists kept their identity, and were removed again at the end
    assert after[f"{A}PNS003/epchain"]["identity"] and after[f"{A}PNS003/epchain"]["removed"]
    assert not any(p.exists() for p in _chain_lists(layout))


def test_a_flared_exposure_is_finished_but_a_partial_run_is_not(tmp_path: Path, standin) -> None:
    layout, _ = _archive(tmp_path)
    assert run_archive(config(tmp_path))["observations"][0]["status"] == "ok"
    # a partial run after a change: what it did not select is stale, and needs remaking from the lists
    sigma = {"allowed_sigma": 4.0}
    part = run_archive(config(tmp_path, storage="final", steps=["espfilt", "cleaned_evt_lists"], espfilt=sigma))
    assert part["observations"][0]["status"] == "ok", part
    assert "stale" in {r["status"] for r in manifest_records(layout.out_root, A).values()}
    assert all(p.is_file() for p in _chain_lists(layout)) and (layout.obs_dir(A) / "work").is_dir()
    # the full run, with PN fully flared (a data-quality outcome, what it feeds skipped): finished, so freed
    standin.faults([{"task": "espfilt", "match": f"{A}PNS003-espfilt", "action": "no_good_time"}])
    full = run_archive(config(tmp_path, storage="final", espfilt=sigma, force=["espfilt"]))
    assert full["observations"][0]["status"] == "ok", full
    statuses = {k: r["status"] for k, r in manifest_records(layout.out_root, A).items()}
    assert statuses[f"{A}PNS003/espfilt"] == "data_quality" and statuses[f"{A}PNS003/cleaned_evt_lists"] == "skipped"
    assert not any(p.exists() for p in _chain_lists(layout)) and not (layout.obs_dir(A) / "work").exists()
    assert layout.clean_events(A, "M1", "S001").is_file()
