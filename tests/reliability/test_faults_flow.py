"""Faults and bad observations in whole runs of the archive flow on the SAS stand-in.

Each test runs the real flow (Prefect test backend) on a 1-2 observation archive with one
or two MOS instruments, injects one fault, and checks: a clear error naming the fault, the
other observations or units complete, every product the manifests call ``ok`` is readable,
and a second run after the cause is gone completes without redoing finished work. Hangs,
crashes, SAS errors, corrupt summaries and the concurrency cap are covered by
tests/integration (issue 4).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.pipeline.step_run import run_call_blocking
from daxa_xmm.sas.calindex import listed_ccfs
from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_archive, write_odf
from flows.process_archive import run_archive
from tests.reliability._support import check_products_readable, manifest, sas_processes_of_log, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _config(tmp_path: Path, **kw: object) -> ProcessingConfig:
    kw.setdefault("instruments", ["M1"])
    return ProcessingConfig(archive=tmp_path / "archive", out=tmp_path / "processed", num_cores=2,
                            retry_delay="0 s", **kw)


def _by_obsid(result: dict) -> dict[str, dict]:
    return {o["obsid"]: o for o in result["observations"]}


def _ok_calls(out: Path, obsid: str) -> set[tuple[str, ...]]:
    # (cwd, argv): argv alone does not name an observation (its ODF is in SAS_ODF)
    return {(r["cwd"], *r["argv"]) for r in manifest(out, obsid)["records"].values() if r["status"] == "ok"}


def test_bad_observations_fail_alone_with_a_clear_message(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    (good,) = write_archive(archive, 1, mix="standard")
    (archive / "0200000001").mkdir()                                           # no ODF files at all
    (archive / "0200000001" / "notes.txt").write_text("ODF to follow\n")
    write_archive(archive, 1, mix="standard", start_obsid=200000002)
    next((archive / "0200000002").glob("*SUM.ASC")).write_bytes(b"")          # empty SUM.ASC
    write_archive(archive, 1, mix="standard", start_obsid=200000003)
    next((archive / "0200000003").glob("*SUM.ASC")).write_bytes(b"\x00\xff" * 300)  # binary SUM.ASC
    write_archive(tmp_path / "elsewhere", 1, mix="standard", start_obsid=200000004)
    (archive / "0200000004").symlink_to(tmp_path / "elsewhere" / "0200000004")  # leads out of the archive

    result = _by_obsid(run_archive(_config(tmp_path)))
    assert result[good]["status"] == "ok"
    expected = {
        "0200000001": "no *_SCX00000SUM.ASC",
        "0200000002": "file is empty",
        "0200000003": "binary",
        "0200000004": "leaves the archive root",
    }
    for obsid, words in expected.items():
        assert result[obsid]["status"] == "failed", result[obsid]
        assert words in result[obsid]["message"], result[obsid]
    touched = {Path(c["cwd"]).parts[-3] for c in standin.calls() if "/work/" in c["cwd"]}
    assert touched == {good}, "no SAS call may run for a bad observation"
    check_products_readable(out, [good])


def test_disk_full_fails_that_step_clearly_and_a_rerun_completes(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard")
    standin.faults([{"task": "espfilt", "match": f"{obsid}M1S001", "action": "enospc"}])
    cfg = _config(tmp_path, instruments=["M1", "M2"])

    outcome = _by_obsid(run_archive(cfg))[obsid]
    assert outcome["status"] == "partial" and outcome["failed"] == [f"{obsid}M1S001"], outcome
    rec = manifest(out, obsid)["records"][f"{obsid}M1S001/espfilt"]
    assert rec["status"] == "failed" and "No space left on device" in rec["message"], rec
    assert rec["errors"] and rec["errors"][0]["name"] == "OSError"
    espfilt_products = [p for p in (out / obsid).rglob("mos1S001-*") if not p.name.endswith("-anom.log")]
    assert not espfilt_products, "no product of the failed step"
    assert manifest(out, obsid)["records"][f"{obsid}M1S001/cleaned_evt_lists"]["status"] == "upstream_failed"
    check_products_readable(out, [obsid])
    done = _ok_calls(out, obsid)

    standin.no_faults()  # the disk was freed
    n = len(standin.calls())
    again = _by_obsid(run_archive(cfg))[obsid]
    assert again["status"] == "ok", again
    redone = [c for c in standin.calls()[n:] if (c["cwd"], c["task"], *c["argv"]) in done]
    assert not redone, redone
    check_products_readable(out, [obsid])


def _first_ok_run(tmp_path: Path) -> tuple[str, ProcessingConfig]:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = _config(tmp_path)
    assert _by_obsid(run_archive(cfg))[obsid]["status"] == "ok"
    return obsid, cfg


def test_ccf_deleted_after_cifbuild_is_a_clear_error_then_rebuilt(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard")
    standin.faults([{"task": "odfingest", "match": obsid, "action": "sleep", "seconds": 2}])
    log = out / obsid / "logs" / f"{obsid}-odf_ingest.stdout.log"
    ccf = out / obsid / "ccf.cif"

    def delete_ccf() -> None:
        wait_for(lambda: log.exists() and "Executing" in log.read_text(), 120, "odfingest to start")
        ccf.unlink()

    thread = threading.Thread(target=delete_ccf)
    thread.start()
    try:
        outcome = _by_obsid(run_archive(_config(tmp_path)))[obsid]
    finally:
        thread.join()
    assert outcome["status"] == "failed", outcome
    rec = manifest(out, obsid)["records"][f"{obsid}/odf_ingest"]
    assert rec["status"] == "failed" and "CIFNotFound" in rec["message"] and "ccf.cif" in rec["message"], rec
    assert rec["attempts"] == 1, "a missing calibration file is not retried"

    standin.no_faults()
    n = len(standin.calls())
    assert _by_obsid(run_archive(_config(tmp_path)))[obsid]["status"] == "ok"
    assert [c["task"] for c in standin.calls()[n:]][:2] == ["cifbuild", "odfingest"]
    assert ccf.is_file()
    check_products_readable(out, [obsid])


def test_missing_or_stale_ccf_makes_the_next_run_rebuild_it(tmp_path: Path, standin) -> None:
    out = tmp_path / "processed"
    obsid, cfg = _first_ok_run(tmp_path)
    ccf = out / obsid / "ccf.cif"
    ccfdir = Path(standin.env["SAS_CCFPATH"])

    n = len(standin.calls())
    # 2. newer calibration installed: the index is stale, rebuilt, and the observation redone
    shutil.copy(ccfdir / "EMOS1_QUANTUMEF_0019.CCF", ccfdir / "EMOS1_QUANTUMEF_0020.CCF")
    assert _by_obsid(run_archive(cfg))[obsid]["status"] == "ok"
    rerun = [c["task"] for c in standin.calls()[n:]]
    assert rerun[0] == "cifbuild" and "emchain" in rerun, rerun
    assert ("EMOS1", "QUANTUMEF", 20) in {(s, t, i) for s, t, i, _ in listed_ccfs(ccf)}

    # 3. a calibration file the index lists is gone: rebuilt again
    (ccfdir / "EMOS1_QUANTUMEF_0020.CCF").unlink()
    n = len(standin.calls())
    assert _by_obsid(run_archive(cfg))[obsid]["status"] == "ok"
    assert standin.calls()[n]["task"] == "cifbuild"
    assert ("EMOS1", "QUANTUMEF", 19) in {(s, t, i) for s, t, i, _ in listed_ccfs(ccf)}

    # (the index itself deleted: test_ccf_deleted_after_cifbuild_is_a_clear_error_then_rebuilt)
    check_products_readable(out, [obsid])


_HOLDER = """
import sys, time
from pathlib import Path
from daxa_xmm.pipeline.locks import observation_lock
with observation_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_an_observation_locked_by_another_run_is_skipped_with_a_clear_message(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    first, second = write_archive(archive, 2, mix="standard")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / second)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        result = _by_obsid(run_archive(_config(tmp_path)))
        assert result[first]["status"] == "ok"
        assert result[second]["status"] == "failed"
        assert f"another run (pid {holder.pid})" in result[second]["message"], result[second]
        assert not any(second in c["cwd"] for c in standin.calls()), "the busy observation was left alone"
        assert not (out / second / "manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()
    done = _ok_calls(out, first)
    n = len(standin.calls())
    result = _by_obsid(run_archive(_config(tmp_path)))  # the other run is gone: the lock with it
    assert result[second]["status"] == "ok" and result[first]["status"] == "ok"
    assert not [c for c in standin.calls()[n:] if (c["cwd"], c["task"], *c["argv"]) in done]
    check_products_readable(out, [first, second])
    assert not sas_processes_of_log(standin.call_log)


def test_a_summary_naming_another_obsid_fails_alone_and_touches_nothing_else(tmp_path: Path, standin) -> None:
    # issue 12.1: a SUM.ASC whose ObsID differs from its folder must not run in (and
    # overwrite) the other observation's products folder
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    asc = next((tmp_path / "archive" / b).glob("*SUM.ASC"))
    asc.write_text(asc.read_text().replace(f"{b} / Observation Identifier", f"{a} / Observation Identifier"))
    result = run_archive(_config(tmp_path, obsids=[a]))
    assert result["observations"][0]["status"] == "ok"
    ccf = tmp_path / "processed" / a / "ccf.cif"
    before = ccf.stat().st_mtime_ns
    standin.reset_log()
    result = run_archive(_config(tmp_path, instruments=["M1"]))
    status = _by_obsid(result)
    assert status[a]["status"] == "ok" and status[b]["status"] == "failed"
    assert a in status[b]["message"] and b in status[b]["message"]
    assert ccf.stat().st_mtime_ns == before  # the other observation's calibration untouched
    assert standin.calls() == []  # nothing ran for the mislabelled one, nothing redone for a


def test_a_corrupt_product_with_exit_0_fails_its_unit_and_is_redone(tmp_path: Path, standin) -> None:
    standin.real_products()  # half of a real product, not of a one-block placeholder
    # issue 12.3: every FITS output is opened and checked before the call is recorded ok
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    unit = f"{obsid}M1S001"
    standin.faults([{"task": "espfilt", "match": f"{unit}-espfilt", "action": "corrupt"}])
    first = _by_obsid(run_archive(_config(tmp_path)))[obsid]
    assert first["status"] == "failed"  # its only MOS1 unit
    recs = manifest(tmp_path / "processed", obsid)["records"]
    assert recs[f"{unit}/espfilt"]["status"] == "failed"
    assert "corrupt output" in recs[f"{unit}/espfilt"]["message"]
    assert not (tmp_path / "processed" / obsid / "cleaning" / "mos1S001-gti.fits").exists()  # never placed
    standin.no_faults()
    assert _by_obsid(run_archive(_config(tmp_path)))[obsid]["status"] == "ok"

    # a recorded product cut short afterwards (a full disk, a bad copy) is redone on re-run
    clean = tmp_path / "processed" / obsid / "events" / f"{obsid}_mos1_S001_clean_evts.fits"
    clean.write_bytes(clean.read_bytes()[:5000])
    summary = next((tmp_path / "processed" / obsid).glob("*SUM.SAS"))
    summary.write_text("\n".join(summary.read_text().splitlines()[:60]) + "\n")  # a truncated summary
    standin.reset_log()
    assert _by_obsid(run_archive(_config(tmp_path)))[obsid]["status"] == "ok"
    tasks = [c["task"] for c in standin.calls()]
    assert "odfingest" in tasks and "evselect" in tasks
    check_products_readable(tmp_path / "processed", [obsid])


def test_an_os_error_that_cannot_pass_is_not_tried_again(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 34.7: a directory where the odfingest summary goes, and one where the manifest
    # is, fail their observation at once, naming the path; the other observation completes
    import tasks.sas_step as sas_step

    summary_dir, manifest_dir, good = "0100000001", "0100000002", "0100000003"
    for obsid in (summary_dir, manifest_dir, good):
        write_odf(tmp_path / "archive", obsid, ObsSpec(exposures=(ExposureSpec("M1", "S001"),)))
    out = tmp_path / "processed"
    (out / summary_dir / f"0828_{summary_dir}_SCX00000SUM.SAS").mkdir(parents=True)
    (out / manifest_dir / "manifest.json").mkdir(parents=True)
    attempts: list[str] = []

    def counted(call, ctx, attempt=1):  # type: ignore[no-untyped-def]
        attempts.append(f"{call.unit}/{call.step}")
        return run_call_blocking(call, ctx, attempt)

    monkeypatch.setattr(sas_step, "run_call_blocking", counted)
    outcomes = _by_obsid(run_archive(_config(tmp_path, instruments=["M1"], retries=2)))
    assert outcomes[summary_dir]["status"] == "failed" and outcomes[manifest_dir]["status"] == "failed", outcomes
    assert "Is a directory" in outcomes[summary_dir]["message"] and "SUM.SAS" in outcomes[summary_dir]["message"]
    assert attempts.count(f"{summary_dir}/odf_ingest") <= 1, attempts
    assert attempts.count(f"{manifest_dir}/cif_build") == 1, attempts
    assert "manifest.json" in outcomes[manifest_dir]["message"], outcomes[manifest_dir]
    assert outcomes[good]["status"] == "ok", outcomes[good]
