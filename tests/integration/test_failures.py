"""Failure handling: timeouts kill the whole SAS process group, SAS errors are final,
crashes are retried, and one bad observation or unit never stops the rest of the archive.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import call_keys, calls_of, config, manifest_records

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _alive(pid: int, standin) -> bool:
    """Whether ``pid`` is a live (not zombie) process running one of ``standin``'s executables."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and str(standin.root).encode() in cmdline


def _statuses(result: dict) -> dict[str, str]:
    return {o["obsid"]: o["status"] for o in result["observations"]}


def test_hung_unit_is_killed_at_its_timeout_retried_and_leaves_no_process(tmp_path: Path, standin) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    unit = f"{a}M1S001"
    standin.faults([{"task": "espfilt", "match": f"{unit}-espfilt", "action": "hang"}])
    # 5 s rather than 3 s: a normal stand-in call must never hit it on a loaded 2-core CI box
    result = run_archive(config(tmp_path, instruments=["M1"], timeout="5 s", retries=1))

    assert _statuses(result) == {a: "failed", b: "ok"}, result
    recs = manifest_records(tmp_path / "processed", a)
    assert recs[f"{unit}/espfilt"]["status"] == "timeout"
    assert recs[f"{unit}/espfilt"]["attempts"] == 2  # retries + 1
    assert "timed out" in recs[f"{unit}/espfilt"]["message"]
    assert recs[f"{unit}/cleaned_evt_lists"]["status"] == "upstream_failed"
    assert all(r["status"] == "ok" for r in manifest_records(tmp_path / "processed", b).values())

    hung = calls_of(standin.calls(), "espfilt", f"{unit}-espfilt")
    assert len(hung) == 2 and all(c.get("fault") == "hang" and c["end"] is None for c in hung), hung
    left = [c["pid"] for c in standin.calls() if _alive(c["pid"], standin)]
    assert left == [], f"stand-in processes still alive after the run: {left}"


def test_sas_error_is_not_retried_and_a_crash_is_retried_to_a_whole_product(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    m1, m2 = f"{obsid}M1S001", f"{obsid}M2S002"
    standin.faults([
        {"task": "espfilt", "match": f"{m1}-espfilt", "action": "fail", "name": "noCounts", "message": "All histo counts are zero!"},
        {"task": "espfilt", "match": f"{m2}-espfilt", "action": "crash", "times": 1},
    ])
    result = run_archive(config(tmp_path, instruments=["M1", "M2"], retries=2))
    assert _statuses(result) == {obsid: "partial"}, result
    recs = manifest_records(tmp_path / "processed", obsid)
    calls = standin.calls()

    # the deterministic SAS error: one call, recorded, not retried
    assert len(calls_of(calls, "espfilt", f"{m1}-espfilt")) == 1
    assert recs[f"{m1}/espfilt"]["status"] == "failed"
    assert recs[f"{m1}/espfilt"]["attempts"] == 1

    # the crash (SIGKILL after writing half its first output): retried once, then whole
    crashed = calls_of(calls, "espfilt", f"{m2}-espfilt")
    assert [c["exit"] for c in crashed] == [-9, 0], crashed
    rec = recs[f"{m2}/espfilt"]
    assert rec["status"] == "ok" and rec["attempts"] == 2
    fits_products = [Path(p) for p in rec["products"] if p.endswith(".fits")]
    assert fits_products
    for product in fits_products:
        assert product.stat().st_size % 2880 == 0, f"{product} is not whole FITS blocks"
        with fits.open(product, memmap=False) as hdul:
            hdul.verify("exception")
            for hdu in hdul:
                _ = hdu.data  # reading every HDU's data fails on a truncated file
    assert recs[f"{m2}/cleaned_evt_lists"]["status"] == "ok"


def test_a_crash_without_retries_leaves_no_product_and_a_rerun_completes(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    unit = f"{obsid}M2S002"
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "processed")
    standin.faults([{"task": "espfilt", "match": f"{unit}-espfilt", "action": "crash", "times": 1}])
    result = run_archive(config(tmp_path, instruments=["M2"], retries=0))

    assert _statuses(result) == {obsid: "failed"}, result
    rec = manifest_records(tmp_path / "processed", obsid)[f"{unit}/espfilt"]
    assert rec["status"] == "failed" and rec["exit_code"] == -9 and rec["products"] == []
    assert "signal" in rec["message"]
    # the half-written output stayed in the work folder; nothing at the product paths
    for path in (layout.espfilt_gti(obsid, "M2", "S002"), layout.espfilt_allevc(obsid, "M2", "S002")):
        assert not path.exists(), f"half product left at {path}"

    standin.reset_log()
    again = run_archive(config(tmp_path, instruments=["M2"], retries=0))
    assert _statuses(again) == {obsid: "ok"}, again
    assert sorted(set(call_keys(standin.calls(), tmp_path / "processed"))) == sorted({
        f"{unit}/espfilt", f"{unit}/cleaned_evt_lists", f"{obsid}M2-0.50-2.00keV/image", f"{obsid}M2-0.50-2.00keV/expmap",
    })


def test_one_corrupt_odf_summary_fails_only_its_observation(tmp_path: Path, standin) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "processed")
    bad = layout.odf_sum_asc(a)
    bad.write_bytes(b"\x00\x01 this is not an ODF summary\n" * 4)
    result = run_archive(config(tmp_path, instruments=["M2"]))

    assert _statuses(result) == {a: "failed", b: "ok"}, result
    message = next(o["message"] for o in result["observations"] if o["obsid"] == a)
    assert bad.name in message, message
    # nothing ran for the corrupt observation; everything ran for the other
    calls = standin.calls()
    assert not [c for c in calls if a in c["cwd"] or any(a in arg for arg in c["argv"])]
    assert all(r["status"] == "ok" for r in manifest_records(tmp_path / "processed", b).values())
    report = (tmp_path / "processed" / "report.json").read_text()
    assert bad.name in report


def test_the_liveness_check_sees_a_hung_standin(tmp_path: Path, standin) -> None:
    """:func:`_alive` must tell a live hung stand-in from a gone one, or the test above proves nothing."""
    standin.faults([{"task": "espfilt", "match": "", "action": "hang"}])
    proc = subprocess.Popen(["espfilt", "eventfile=x.fits"], cwd=tmp_path, env=dict(os.environ),  # noqa: S603, S607
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # until it has logged its start (it hangs after that)
            if standin.calls() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert standin.calls()[0]["pid"] == proc.pid
        assert _alive(proc.pid, standin)
    finally:
        proc.kill()
        proc.wait()
    assert not _alive(proc.pid, standin)


def test_an_unreadable_emanom_verdict_fails_the_cleaning_by_name_and_records_it(tmp_path: Path, standin) -> None:
    # the cleaning is built from emanom's log (the CCDs it accepted): when that log cannot be
    # read, the cleaning and what reads it are recorded as not run, naming why
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["M1"], clean={"filt_mos_anom_state": True})
    assert run_archive(cfg)["observations"][0]["status"] == "ok"
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    log = layout.emanom_log(obsid, "M1", "S001")
    log.write_text("this is not what emanom writes\n")
    result = run_archive(cfg)
    assert result["observations"][0]["status"] == "failed", result
    recs = manifest_records(cfg.out_root, obsid)
    clean = recs[f"{obsid}M1S001/cleaned_evt_lists"]
    assert clean["status"] == "upstream_failed" and log.name in clean["message"], clean
    assert recs[f"{obsid}M1-0.50-2.00keV/image"]["status"] == "upstream_failed"
