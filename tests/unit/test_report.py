"""The archive report and quick-look pictures, built from manifests and products."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.report.archive_report import build_report, markdown_summary, write_report
from daxa_xmm.report.quicklook import observation_pictures
from daxa_xmm.sas.calls import OutputSpec, SasCall, SasResult
from daxa_xmm.sas.stderr import SasRecord

OBSID = "0201903501"


def _layout(tmp_path: Path) -> ArchiveLayout:
    return ArchiveLayout(tmp_path / "raw", tmp_path / "out")


def _record(layout: ArchiveLayout, step: str, status: str, records: tuple[SasRecord, ...] = ()) -> None:
    call = SasCall(step=step, obsid=OBSID, unit=f"{OBSID}PNS003", argv=(step, "a=<b>"), cwd=layout.work_dir(OBSID, "w"),
                   outputs=(OutputSpec("x.fits", layout.events_dir(OBSID) / "x.fits"),))
    now = time.time()
    res = SasResult(call=call, status=status, exit_code=0 if status == "ok" else 1, records=records, products=(),
                    started=now, ended=now + 1.5, stdout_log=None, stderr_log=None, message="" if status == "ok" else "broke")
    ManifestStore(layout.manifest(OBSID), OBSID).record(res, "22.1.0")


def test_report_rows_come_from_the_manifest_and_html_is_escaped(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    _record(layout, "epchain", "ok")
    err = SasRecord("espfilt", "error", "noCounts", "All histo counts are zero! <script>")
    _record(layout, "espfilt", "failed", (err,))
    report = build_report(layout, [{"obsid": OBSID, "status": "partial", "message": "1 unit(s) failed"}], "22.1.0")
    rows = report.observations[0].rows
    assert [(r["step"], r["status"]) for r in rows] == [("epchain", "ok"), ("espfilt", "failed")]
    assert "noCounts" in rows[1]["errors"]
    js, page = write_report(report, layout.out_root)
    assert json.loads(js.read_text())["counts"] == {"partial": 1}
    html = page.read_text()
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "| 0201903501 | partial |" in markdown_summary(report)


def test_quicklook_pictures_from_products(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    layout.cleaning_dir(OBSID).mkdir(parents=True)
    layout.background_dir(OBSID).mkdir(parents=True)
    layout.images_dir(OBSID).mkdir(parents=True)
    t = np.sort(np.random.default_rng(1).uniform(0, 10_000, 5000))
    events = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=t)], name="EVENTS")
    fits.HDUList([fits.PrimaryHDU(), events]).writeto(layout.background_dir(OBSID) / "pnS003-allevc.fits")
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[0.0]), fits.Column("STOP", "D", array=[6000.0])], name="STDGTI")
    fits.HDUList([fits.PrimaryHDU(), gti]).writeto(layout.cleaning_dir(OBSID) / "pnS003-gti.fits")
    fits.PrimaryHDU(np.ones((16, 16))).writeto(layout.images_dir(OBSID) / f"{OBSID}_pn_0.50-2.00keVimg.fits")
    (layout.images_dir(OBSID) / f"{OBSID}_mos1_0.50-2.00keVimg.fits").write_text("not FITS")  # skipped, no crash
    pics = observation_pictures(layout, OBSID)
    names = sorted(p.name for p in pics)
    assert names == ["0201903501_pn_0.50-2.00keVimg.png", "pnS003-lightcurve.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pics)


def test_report_covers_every_manifest_under_out_whichever_run_wrote_it(tmp_path: Path) -> None:
    # issue 12.4: a run on a subset of ObsIDs, or one that found an observation busy, must
    # neither drop the others nor call a finished one failed
    layout = _layout(tmp_path)
    _record(layout, "epchain", "ok")  # OBSID finished by an earlier run
    other = "0201903502"
    busy = "0201903503"
    report = build_report(layout, [
        {"obsid": other, "status": "ok"},
        {"obsid": busy, "status": "failed", "message": "another run (pid 42) is processing this observation", "busy": True},
    ], "22.1.0")
    got = {o.obsid: (o.status, o.message) for o in report.observations}
    assert got[OBSID][0] == "ok" and "not processed by this run" in got[OBSID][1]
    assert got[other] == ("ok", "")
    assert got[busy][0] == "running" and "another run" in got[busy][1]
    _record(layout, "espfilt", "failed")
    again = {o.obsid: o.status for o in build_report(layout, [], "22.1.0").observations}
    assert again == {OBSID: "partial"}


def test_quicklook_image_shows_a_sparse_count_image(tmp_path: Path, xmm_samples: Path) -> None:
    # issue 11.7: a linear (or plain log) stretch of a sparse X-ray image is nearly black;
    # the asinh stretch must light up the field of view, and the PNG carries a colour bar
    from daxa_xmm.report.quicklook import display_norm, image_png

    image = xmm_samples / "images" / "0201903501_mos1_exp1-0.50-2.00keVimg.fits"
    data = np.asarray(fits.getdata(image), float)
    smooth, norm = display_norm(data)
    levels = np.asarray(norm(smooth))
    assert np.percentile(np.log1p(data) / np.log1p(data).max(), 90) == 0  # the old view: black
    assert np.percentile(levels, 90) > 0.03 and levels.max() >= 1.0  # the brightest pixels saturate
    png = image_png(image, tmp_path / "q.png", "MOS1")
    assert png is not None and png.stat().st_size > 5000
    # a degenerate image (the fast stand-in's 1 x 1 placeholders) shows nothing: no picture
    fits.PrimaryHDU(np.ones((1, 1), np.uint8)).writeto(tmp_path / "tiny.fits")
    assert image_png(tmp_path / "tiny.fits", tmp_path / "tiny.png", "PN") is None and not (tmp_path / "tiny.png").exists()


def test_data_quality_outcomes_are_counted_and_listed_apart_from_failures(tmp_path: Path) -> None:
    layout = _layout(tmp_path)
    _record(layout, "epchain", "ok")
    call = SasCall(step="espfilt", obsid=OBSID, unit=f"{OBSID}PNS003", argv=("espfilt",), cwd=layout.work_dir(OBSID, "w"))
    unusable = SasResult(call=call, status="data_quality", exit_code=0, records=(), products=(layout.cleaning_dir(OBSID) / "g.fits",),
                         started=1.0, ended=2.0, stdout_log=None, stderr_log=None, quality=("flare_gti",),
                         message=f"espfilt [{OBSID}PNS003]: data quality, not a SAS error: g.fits: the exposure is fully flared")
    store = ManifestStore(layout.manifest(OBSID), OBSID)
    store.record(unusable, "22.1.0")
    assert store.quality_note() == f"1 data-quality outcome(s), not failures: espfilt [{OBSID}PNS003]"
    # as this run's outcome says, and as the manifest alone says (an observation another run made)
    for outcome in ({"obsid": OBSID, "status": "ok", "message": store.quality_note()}, {"obsid": OBSID, "from_manifest": "x"}):
        report = build_report(layout, [outcome], "22.1.0")
        assert report.counts == {"ok": 1} and report.data_quality == {"flare_gti": 1}
        (obs,) = report.observations
        assert [(q["step"], q["quality"]) for q in obs.data_quality] == [("espfilt", ["flare_gti"])]
        assert str(layout.cleaning_dir(OBSID) / "g.fits") not in obs.products
    _, page = write_report(report, layout.out_root)
    html = page.read_text()
    assert "1 data-quality outcome(s), not failures</span> (1 flare_gti)" in html
    assert "<h2>Data-quality outcomes</h2>" in html and "the exposure is fully flared" in html
    assert "Data-quality outcomes (not failures): 1 flare_gti" in markdown_summary(report)
    _record(layout, "cleaned_evt_lists", "failed")  # a failure still counts as one
    assert build_report(layout, [{"obsid": OBSID, "from_manifest": "x"}], "22.1.0").counts == {"partial": 1}

