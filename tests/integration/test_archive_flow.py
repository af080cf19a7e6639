"""The archive flow end to end on the SAS stand-in: products, report, and a no-op re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.standin.synth import write_archive
from flows.process_archive import run_archive

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _config(tmp_path: Path, **kw: object) -> ProcessingConfig:
    return ProcessingConfig(archive=tmp_path / "archive", out=tmp_path / "processed", num_cores=2, retry_delay="0 s", **kw)


def test_demo_archive_end_to_end_then_a_rerun_makes_no_sas_call(tmp_path: Path, standin) -> None:
    obsids = write_archive(tmp_path / "archive", mix="demo")
    result = run_archive(_config(tmp_path))
    assert [o["status"] for o in result["observations"]] == ["ok"] * len(obsids), result

    out = tmp_path / "processed"
    for obsid in obsids:
        manifest = json.loads((out / obsid / "manifest.json").read_text())
        records = manifest["records"].values()
        assert records and all(r["status"] == "ok" for r in records)
        for rec in records:
            for product in rec["products"]:
                if product.endswith((".fits", ".FIT", ".cif")):
                    with fits.open(product) as hdul:  # every product is readable FITS
                        assert len(hdul) >= 1
    # every EPIC instrument that was processed has merged lists, and images/expmaps per band
    first = obsids[0]
    events = sorted(p.name for p in (out / first / "events").iterdir())
    assert f"{first}_pn_merged_clean_evts.fits" in events
    images = sorted(p.name for p in (out / first / "images").iterdir())
    assert f"{first}_pn_0.50-2.00keVimg.fits" in images and f"{first}_pn_2.00-10.00keVexpmap.fits" in images
    report = json.loads((out / "report.json").read_text())
    assert {o["obsid"] for o in report["observations"]} == set(obsids)
    assert (out / "report.html").read_text().count("<h2") == len(obsids)

    n_calls = len(standin.calls())
    assert n_calls > 30
    again = run_archive(_config(tmp_path))
    assert [o["status"] for o in again["observations"]] == ["ok"] * len(obsids)
    assert len(standin.calls()) == n_calls, "a re-run of a finished archive must make no SAS call"


def test_an_instruments_merged_lists_are_made_apart_so_one_failing_spoils_no_other(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="multi_pn")  # PN: three sub-exposures to merge
    standin.faults([{"task": "merge", "match": f"{obsid}PN-clean-merge", "action": "fail"}])  # the cleaned lists' merge
    cfg = _config(tmp_path, instruments=["PN"], retries=0)
    result = run_archive(cfg)
    assert result["observations"][0]["status"] == "partial", result
    records = json.loads((tmp_path / "processed" / obsid / "manifest.json").read_text())["records"]
    status = {key: r["status"] for key, r in records.items()}
    assert status[f"{obsid}PN-clean/merge_subexposures_1"] == "failed", status
    for kind in ("allevc", "clean_oot", "allevcoot"):  # the other merged lists do not read it: made
        assert status[f"{obsid}PN-{kind}/merge_subexposures"] == "ok", status
    band = [k for k in status if k.startswith(f"{obsid}PN-") and k.endswith("/image")]
    assert band and all(status[k] == "upstream_failed" for k in band), status  # the images read the cleaned list
    # fixed, the re-run makes the cleaned lists' merge and the images, and no other merged list:
    # each one's identity carries what it merges, not the merged lists made before it
    standin.no_faults()
    standin.reset_log()
    assert run_archive(cfg)["observations"][0]["status"] == "ok"
    merged = {Path(c["cwd"]).name for c in standin.calls() if c["task"] == "merge"}
    assert merged == {f"{obsid}PN-clean-merge"}, merged
