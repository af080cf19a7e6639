"""Resume: a re-run makes exactly the SAS calls whose inputs, parameters or outcome changed.

After a failure only the failed call and what reads its products run again; after a
parameter change only that step and what is downstream of it; ``force`` re-runs a step and
its downstream even when nothing changed. Everything is read from the stand-in's call log
and the manifests.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_archive, write_odf
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, calls_of, config, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")

A, B = "0100000001", "0100000002"


def _two_mos1_archive(root: Path) -> None:
    """A: MOS1 S001 and U002 (merged together) and MOS2 S002; B: MOS2 S002 only."""
    write_odf(root, A, ObsSpec(exposures=(ExposureSpec("M1", "S001"), ExposureSpec("M1", "U002"), ExposureSpec("M2", "S002"))))
    write_odf(root, B, ObsSpec(revolution="0829", exposures=(ExposureSpec("M2", "S002"),)))


def test_failed_unit_then_rerun_runs_only_that_unit_and_its_dependants(tmp_path: Path, standin) -> None:
    _two_mos1_archive(tmp_path / "archive")
    out = tmp_path / "processed"
    failing = f"{A}M1S001"
    standin.faults([{"task": "espfilt", "match": f"{failing}-espfilt", "action": "fail",
                     "name": "noCounts", "message": "All histo counts are zero!"}])
    first = run_archive(config(tmp_path))

    status = {o["obsid"]: o["status"] for o in first["observations"]}
    assert status == {A: "partial", B: "ok"}, first
    recs = manifest_records(out, A)
    assert recs[f"{failing}/espfilt"]["status"] == "failed"
    assert recs[f"{failing}/espfilt"]["attempts"] == 1
    assert any(e.get("name") == "noCounts" for e in recs[f"{failing}/espfilt"]["errors"])
    assert recs[f"{failing}/cleaned_evt_lists"]["status"] == "upstream_failed"
    # what ran before the failure, and every other unit, completed
    assert recs[f"{failing}/emchain"]["status"] == "ok"
    for unit in (f"{A}M1U002", f"{A}M2S002"):
        for step in ("emchain", "emanom", "espfilt", "cleaned_evt_lists"):
            assert recs[f"{unit}/{step}"]["status"] == "ok", (unit, step)
    assert all(r["status"] == "ok" for r in manifest_records(out, B).values())
    # MOS1 was merged and imaged from the good sub-exposure, MOS2 from its only one
    assert recs[f"{A}M1-0.50-2.00keV/image"]["status"] == "ok"
    assert recs[f"{A}M2-0.50-2.00keV/image"]["status"] == "ok"
    placed = recs[f"{A}M1-clean/merge_subexposures"]  # one good source: placed (a copy), not merged
    assert placed["status"] == "ok" and placed["argv"] == [] and len(placed["facts"]["sources"]) == 1
    assert "M1U002" in placed["facts"]["sources"][0] or "U002" in placed["facts"]["sources"][0]
    assert len(calls_of(standin.calls(), "espfilt", f"{failing}-espfilt")) == 1

    standin.no_faults()
    standin.reset_log()
    second = run_archive(config(tmp_path))
    assert [o["status"] for o in second["observations"]] == ["ok", "ok"], second
    keys = Counter(call_keys(standin.calls(), out))
    # the failed espfilt, its cleaned list, now real merges of both MOS1 sub-exposures
    # (cleaned and espfilt's all-good lists), and MOS1's image and exposure map: nothing of
    # MOS2, of B, nor anything upstream
    assert keys == Counter({
        f"{failing}/espfilt": 1,
        f"{failing}/cleaned_evt_lists": 1,
        f"{A}M1-clean/merge_subexposures": 1,
        f"{A}M1-allevc/merge_subexposures": 1,
        f"{A}M1-0.50-2.00keV/image": 1,
        f"{A}M1-0.50-2.00keV/expmap": 1,
    })
    assert all(r["status"] == "ok" for r in manifest_records(out, A).values())


def test_parameter_change_reruns_that_step_and_downstream_and_force_does_too(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    unit = f"{obsid}M1S001"
    downstream_of_espfilt = Counter({
        f"{unit}/espfilt": 1,
        f"{unit}/cleaned_evt_lists": 1,
        f"{obsid}M1-0.50-2.00keV/image": 1,
        f"{obsid}M1-0.50-2.00keV/expmap": 1,
    })
    run_archive(config(tmp_path, instruments=["M1"]))
    assert all(r["status"] == "ok" for r in manifest_records(out, obsid).values())

    # 1. a changed espfilt parameter: espfilt and everything after it, nothing before
    standin.reset_log()
    run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0}))
    calls = standin.calls()
    assert Counter(call_keys(calls, out)) == downstream_of_espfilt
    (espf,) = calls_of(calls, "espfilt", unit)
    assert "allowsigma=4" in espf["argv"] or "allowsigma=4.0" in espf["argv"], espf["argv"]

    # 2. same parameters again: nothing at all
    standin.reset_log()
    run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0}))
    assert standin.calls() == []

    # 3. force espfilt with unchanged parameters: espfilt and downstream again
    standin.reset_log()
    run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0}, force=["espfilt"]))
    assert Counter(call_keys(standin.calls(), out)) == downstream_of_espfilt

    # 4. a cleaning energy range: the cleaned list and its products, not espfilt
    standin.reset_log()
    run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0},
                       clean={"lo_en": "0.3 keV", "hi_en": "10 keV"}))
    calls = standin.calls()
    assert Counter(call_keys(calls, out)) == downstream_of_espfilt - Counter({f"{unit}/espfilt": 1})
    (clean,) = calls_of(calls, "evselect", f"{unit}-cleaned_evt_lists")
    expr = next(a for a in clean["argv"] if a.startswith("expression="))
    assert "300" in expr and "10000" in expr, expr
    assert all(r["status"] == "ok" for r in manifest_records(out, obsid).values())


@pytest.mark.parametrize(
    ("spec", "unit", "earlier", "later", "task", "match"),
    [
        # epchain's normal run reads the raw intermediates and the attitude file its OOT run
        # left in their shared folder (epchain pages; DAXA runs both in one folder)
        (ExposureSpec("PN", "S003"), f"{A}PNS003", "epchain_oot", "epchain", "epchain", "runatthkgen=N"),
        # rgsproc's angles stage modifies the merged list stage 1 left (rgsproc algorithm page)
        (ExposureSpec("R1", "S004", "Spectroscopy", datamode="Spectroscopy"), f"{A}R1S004", "rgs_events",
         "rgs_angles", "rgsproc", "entrystage=2:angles"),
    ],
)
def test_a_lost_shared_folder_redoes_the_call_that_filled_it(tmp_path: Path, standin, spec: ExposureSpec, unit: str,
                                                             earlier: str, later: str, task: str, match: str) -> None:
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(spec,)))
    out = tmp_path / "processed"
    standin.faults([{"task": task, "match": match, "action": "fail", "name": "InternalError", "message": "boom"}])
    first = run_archive(config(tmp_path, instruments=[spec.inst]))
    assert first["observations"][0]["status"] != "ok"
    recs = manifest_records(out, A)
    assert (recs[f"{unit}/{earlier}"]["status"], recs[f"{unit}/{later}"]["status"]) == ("ok", "failed")
    folder = Path(recs[f"{unit}/{later}"]["cwd"])
    assert folder.is_dir() and folder == Path(recs[f"{unit}/{earlier}"]["cwd"])
    import shutil

    shutil.rmtree(folder)  # scratch cleaned between the runs
    standin.no_faults()
    standin.reset_log()
    second = run_archive(config(tmp_path, instruments=[spec.inst]))
    assert second["observations"][0]["status"] == "ok", second
    keys = call_keys(standin.calls(), out)
    # the earlier call was redone first (not skipped as up to date), then the later one
    assert keys.index(f"{unit}/{earlier}") < keys.index(f"{unit}/{later}")
    assert Counter(keys)[f"{unit}/{earlier}"] == 1


def test_a_finished_chain_whose_scratch_was_cleaned_makes_no_call(tmp_path: Path, standin) -> None:
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(ExposureSpec("PN", "S003"),)))
    assert run_archive(config(tmp_path, instruments=["PN"]))["observations"][0]["status"] == "ok"
    import shutil

    shutil.rmtree(tmp_path / "processed" / A / "work")  # leftovers matter only to calls that must run
    standin.reset_log()
    assert run_archive(config(tmp_path, instruments=["PN"]))["observations"][0]["status"] == "ok"
    assert standin.calls() == []


def test_a_partial_run_does_what_was_asked_and_marks_later_products_stale(tmp_path: Path, standin) -> None:
    # issue 12.8: `--steps espfilt cleaned_evt_lists` after a parameter change exits ok;
    # the merged lists and images, made from the superseded lists, say stale, not ok
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    assert run_archive(config(tmp_path, instruments=["M1"]))["observations"][0]["status"] == "ok"
    part = run_archive(config(tmp_path, instruments=["M1"], steps=["espfilt", "cleaned_evt_lists"],
                              espfilt={"allowed_sigma": 4.0}))
    assert part["observations"][0]["status"] == "ok", part
    recs = manifest_records(out, obsid)
    assert recs[f"{obsid}M1S001/espfilt"]["status"] == "ok"
    assert recs[f"{obsid}M1S001/cleaned_evt_lists"]["status"] == "ok"
    stale = {k for k, r in recs.items() if r["status"] == "stale"}
    # M1's one sub-exposure is copied as its merged lists: a merge not asked for, so stale too
    placed = {f"{obsid}M1-clean/merge_subexposures", f"{obsid}M1-allevc/merge_subexposures"}
    assert stale == {f"{obsid}M1-0.50-2.00keV/image", f"{obsid}M1-0.50-2.00keV/expmap"} | placed, stale
    assert all(Path(p).is_file() for k in stale for p in recs[k]["products"])  # kept for the user to see
    standin.reset_log()
    assert run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0}))["observations"][0]["status"] == "ok"
    assert set(call_keys(standin.calls(), out)) == stale - placed  # the full run remakes exactly those (SAS's)
    again = manifest_records(out, obsid)
    assert all(again[k]["ended"] > recs[k]["ended"] for k in placed)  # and copies the lists anew
    run_archive(config(tmp_path, instruments=["M1"], espfilt={"allowed_sigma": 4.0}))
    assert all(manifest_records(out, obsid)[k]["ended"] == again[k]["ended"] for k in placed)  # up to date: kept
    assert all(r["status"] == "ok" for r in manifest_records(out, obsid).values())


def test_a_first_partial_run_is_ok_and_one_whose_inputs_were_never_made_fails_naming_them(
        tmp_path: Path, standin, caplog: pytest.LogCaptureFixture) -> None:
    # DAXA's way, one step at a time on a new archive: the first runs did what they were asked
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    asked = run_archive(config(tmp_path, instruments=["M1"], steps=["emchain"]))  # needs odfingest's summary
    assert asked["observations"][0]["status"] == "failed", asked
    assert "emchain cannot run: odf_ingest" in asked["observations"][0]["message"]
    first = run_archive(config(tmp_path, instruments=["M1"], steps=["cif_build", "odf_ingest"]))
    assert first["observations"][0]["status"] == "ok", first
    assert set(call_keys(standin.calls(), out)) == {f"{obsid}/cif_build", f"{obsid}/odf_ingest"}
    standin.reset_log()
    skip = run_archive(config(tmp_path, instruments=["M1"], steps=["espfilt"]))  # emchain was never run
    assert skip["observations"][0]["status"] == "failed", skip
    assert skip["observations"][0]["failed"] == [f"{obsid}M1S001"]
    recs = manifest_records(out, obsid)
    assert recs[f"{obsid}M1S001/espfilt"]["status"] == "skipped"
    assert "emchain" in recs[f"{obsid}M1S001/espfilt"]["message"]
    assert "espfilt [" in caplog.text and "cannot run: emchain [" in caplog.text
    assert standin.calls() == []
    chain = run_archive(config(tmp_path, instruments=["M1"], steps=["emchain", "emanom", "espfilt"]))
    assert chain["observations"][0]["status"] == "ok", chain
    assert set(call_keys(standin.calls(), out)) == {f"{obsid}M1S001/{s}" for s in ("emchain", "emanom", "espfilt")}
    rest = run_archive(config(tmp_path, instruments=["M1"]))
    assert rest["observations"][0]["status"] == "ok", rest
    assert all(r["status"] == "ok" for r in manifest_records(out, obsid).values())


def test_products_made_from_lists_another_run_remade_are_stale_not_ok(tmp_path: Path, standin) -> None:
    # issue 34.1: one run makes 0.3-1 keV images; another, with other espfilt settings and
    # its own bands, remakes the cleaned lists they were made from. The first run's images
    # no longer match what they were made from: stale, in the manifest and the report.
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    out = tmp_path / "processed"
    soft = {"bands": [("0.3 keV", "1 keV")]}
    assert run_archive(config(tmp_path, instruments=["M1"], images=soft))["observations"][0]["status"] == "ok"
    other = run_archive(config(tmp_path, instruments=["M1"], espfilt={"smooth": 41}))
    assert other["observations"][0]["status"] == "ok", other  # what this run was asked is done
    recs = manifest_records(out, obsid)
    assert recs[f"{obsid}M1S001/espfilt"]["status"] == "ok"
    assert "smooth=41" in recs[f"{obsid}M1S001/espfilt"]["argv"]
    assert recs[f"{obsid}M1-0.50-2.00keV/image"]["status"] == "ok"
    stale = {k for k, r in recs.items() if r["status"] == "stale"}
    assert stale == {f"{obsid}M1-0.30-1.00keV/image", f"{obsid}M1-0.30-1.00keV/expmap"}, stale
    rows = json.loads((out / "report.json").read_text())["observations"][0]["rows"]
    assert {f"{r['unit']}/{r['step']}" for r in rows if r["status"] == "stale"} == stale
    # a run with the soft band again remakes exactly those, from the lists as they are now
    standin.reset_log()
    assert run_archive(config(tmp_path, instruments=["M1"], images=soft, espfilt={"smooth": 41}))["observations"][0]["status"] == "ok"
    assert set(call_keys(standin.calls(), out)) == stale
    assert manifest_records(out, obsid)[f"{obsid}M1-0.30-1.00keV/image"]["status"] == "ok"


def _moved_or_copied(src: Path, dest: Path, how: str) -> None:
    if how == "cp -a":
        subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    else:
        src.rename(dest)


@pytest.mark.parametrize("how", ["cp -a", "mv"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_a_moved_or_copied_products_folder_is_up_to_date(tmp_path: Path, standin, how: str, gz: bool) -> None:
    # issue 34.8: users move products between disks; with the ODFs where they were, nothing
    # is redone, and the records follow the folder. Gzipped ODFs are unpacked into the
    # products folder, so the summary's PATH moves with it.
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(ExposureSpec("M1", "S001"),)), gzip=gz)
    assert run_archive(config(tmp_path))["observations"][0]["status"] == "ok"
    (tmp_path / "disk2").mkdir()
    _moved_or_copied(tmp_path / "processed", tmp_path / "disk2" / "processed", how)
    moved = tmp_path / "disk2" / "processed"
    standin.reset_log()
    again = run_archive(config(tmp_path, out="disk2/processed"))
    assert again["observations"][0]["status"] == "ok", again
    assert [c["task"] for c in standin.calls()] == []  # nothing redone
    # a run that does work there reads the moved records and the ODF through the summary's PATH
    changed = run_archive(config(tmp_path, out="disk2/processed", force=["emchain"]))
    assert changed["observations"][0]["status"] == "ok", changed
    ran = {key.split("/")[1] for key in call_keys(standin.calls(), moved)}
    assert ran == {"emchain", "emanom", "espfilt", "cleaned_evt_lists", "image", "expmap"}, ran
    recs = manifest_records(moved, A)
    assert all(r["status"] == "ok" for r in recs.values())
    assert all(p.startswith(str(moved.resolve())) for r in recs.values() for p in r["products"])
    summary = next((moved / A).glob("*SUM.SAS")).read_text()
    odf = (moved / A / "odf") if gz else (tmp_path / "archive" / A)
    assert f"PATH {odf.resolve()}\n" in summary


def test_the_users_sas_odf_and_sas_ccf_never_reach_a_call(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 34.5: a shell set up for another observation: every call gets exactly its own
    # observation's SAS_ODF and SAS_CCF, and cifbuild (which makes the index) no SAS_CCF
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(ExposureSpec("PN", "S003"), ExposureSpec("M1", "S001"))))
    other = tmp_path / "elsewhere" / "0999999999"
    monkeypatch.setenv("SAS_ODF", str(other / "0001_0999999999_SCX00000SUM.SAS"))
    monkeypatch.setenv("SAS_CCF", str(other / "ccf.cif"))
    assert run_archive(config(tmp_path))["observations"][0]["status"] == "ok"
    calls = standin.calls()
    assert {c["task"] for c in calls} >= {"cifbuild", "odfingest", "epchain", "emchain", "espfilt", "evselect", "eexpmap"}
    mine = (str((tmp_path / "processed" / A).resolve()), str((tmp_path / "archive" / A).resolve()))
    for c in calls:
        for var in ("SAS_ODF", "SAS_CCF"):
            value = c.get(var)
            assert value is None or value.startswith(mine), (c["task"], var, value)
    assert all(c.get("SAS_CCF") is None for c in calls if c["task"] == "cifbuild")
    assert all(c.get("SAS_ODF") is None for c in calls if c["task"] in ("espfilt", "evselect", "eexpmap", "emanom"))


def test_a_products_folder_whose_path_has_a_space_works(tmp_path: Path, standin) -> None:
    # issue 34.4: was refused after cifbuild, odfingest, emchain, emanom and espfilt had run
    # (the GTI file's path went into evselect's expression); the stand-in's evselect really
    # reads the GTI, from the call's working folder, as SAS opens a relative name
    standin.real_products()
    write_odf(tmp_path / "archive", A, ObsSpec(exposures=(ExposureSpec("M1", "S001"),)))
    result = run_archive(config(tmp_path, out="my products/processed"))
    assert result["observations"][0]["status"] == "ok", result
    recs = manifest_records(tmp_path / "my products" / "processed", A)
    assert all(r["status"] == "ok" for r in recs.values())
    expr = next(a for a in recs[f"{A}M1S001/cleaned_evt_lists"]["argv"] if a.startswith("expression="))
    assert "gti(../../cleaning/mos1S001-gti.fits,TIME)" in expr and "my products" not in expr, expr
