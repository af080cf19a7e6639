"""Data-quality outcomes in whole runs of the archive flow (issue 33.3).

The SAS stand-in leaves one product of each check whole but unusable (its degrading faults,
daxa_xmm.standin.degrade): a fully flared PN sub-exposure (espfilt's GTI without good time),
a MOS1 cleaned list without events, a MOS2 image without WCS and a MOS2 exposure map without
exposure. Each is recorded as a data-quality outcome, named apart from SAS errors in the
manifest, the report and DAXA's records; what it feeds is not run; the instrument's merge
goes on with the other sub-exposures; the observation is not failed; a re-run redoes none of
it, and a raised threshold re-judges exactly the products it is about.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.daxa.records import MISSION, read_records
from daxa_xmm.layout import ArchiveLayout, band_label
from daxa_xmm.pipeline.uptodate import UP_TO_DATE
from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_odf
from flows.process_archive import run_archive
from tests.reliability._support import check_products_readable, manifest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

OBS = "0200000001"
SOFT, HARD = band_label(500, 2000), band_label(2000, 10000)
#: One product of each check made unusable; PN S003 of three PN sub-exposures.
FAULTS = [
    {"task": "espfilt", "match": f"{OBS}PNS003-espfilt", "action": "no_good_time"},
    {"task": "evselect", "match": f"{OBS}M1S001-cleaned_evt_lists", "action": "no_events"},
    {"task": "evselect", "match": f"{OBS}M2-{SOFT}-images", "action": "no_wcs"},
    {"task": "eexpmap", "match": f"{OBS}M2-{HARD}-images", "action": "zero_exposure"},
]


def _config(tmp_path: Path, **kw: object) -> ProcessingConfig:
    return ProcessingConfig(archive=tmp_path / "archive", out=tmp_path / "processed", num_cores=2, retry_delay="0 s",
                            instruments=["PN", "M1", "M2"], **kw)


def _run(tmp_path: Path, **kw: object) -> dict:
    (outcome,) = run_archive(_config(tmp_path, **kw))["observations"]
    return outcome


def _statuses(out: Path) -> dict[str, str]:
    return {key: rec["status"] for key, rec in manifest(out, OBS)["records"].items()}


def test_each_check_stops_what_it_feeds_without_failing_the_observation_and_is_not_redone(tmp_path: Path, standin) -> None:
    exposures = (ExposureSpec("PN", "S003"), ExposureSpec("PN", "S004"), ExposureSpec("PN", "U002"),
                 ExposureSpec("M1", "S001"), ExposureSpec("M2", "S002"))
    write_odf(tmp_path / "archive", OBS, ObsSpec(exposures=exposures))
    out, layout = tmp_path / "processed", ArchiveLayout(tmp_path / "archive", tmp_path / "processed")
    standin.faults(FAULTS)

    first = _run(tmp_path)
    assert first["status"] == "ok", first  # nothing failed: the data hold nothing usable
    assert "4 data-quality outcome(s), not failures" in first["message"], first
    records = manifest(out, OBS)["records"]
    status = _statuses(out)
    unusable = {k: (r["quality"], r["message"]) for k, r in records.items() if r["status"] == "data_quality"}
    assert sorted(unusable) == [f"{OBS}M1S001/cleaned_evt_lists", f"{OBS}M2-{SOFT}/image", f"{OBS}M2-{HARD}/expmap",
                                f"{OBS}PNS003/espfilt"]
    for key, words in ((f"{OBS}PNS003/espfilt", "pnS003-gti.fits: no good time left after flare filtering: the exposure "
                                                  "is fully flared (0 s of GTI; needs more than 0 s, quality.min_flare_gti)"),
                       (f"{OBS}M1S001/cleaned_evt_lists", "no events left after cleaning (0 in EVENTS"),
                       (f"{OBS}M2-{SOFT}/image", "no celestial WCS"),
                       (f"{OBS}M2-{HARD}/expmap", "no exposure in the field of view (the map is all zero")):
        assert "data quality, not a SAS error: " in unusable[key][1] and words in unusable[key][1], unusable[key]
        assert records[key]["errors"] == [] and records[key]["exit_code"] == 0
    assert [unusable[k][0] for k in sorted(unusable)] == [["cleaned_events"], ["image"], ["exposure_map"], ["flare_gti"]]
    # what each one feeds is not run, and says why
    for key in (f"{OBS}PNS003/cleaned_evt_lists", f"{OBS}PNS003/cleaned_evt_lists_oot", f"{OBS}M2-{SOFT}/expmap",
                f"{OBS}M1-{SOFT}/image", f"{OBS}M1-{HARD}/expmap"):
        assert status[key] == "skipped", (key, records[key])
        assert records[key]["message"].startswith("not run: "), records[key]
    assert "pnS003-gti.fits" in records[f"{OBS}PNS003/cleaned_evt_lists"]["message"]
    assert "no M1 sub-exposure was usable" in records[f"{OBS}M1-{SOFT}/image"]["message"]
    assert not layout.merged_events(OBS, "M1").exists()  # one sub-exposure, unusable: nothing placed as the merged list
    # PN's merge goes on with the two other sub-exposures; M2's other band is made
    merge = records[f"{OBS}PN-clean/merge_subexposures"]
    assert merge["status"] == "ok" and not any("S003" in a for a in merge["argv"]), merge["argv"]
    assert any("S004" in a for a in merge["argv"]) and any("U002" in a for a in merge["argv"])
    assert status[f"{OBS}PN-{SOFT}/expmap"] == status[f"{OBS}M2-{HARD}/image"] == "ok"
    assert layout.espfilt_gti(OBS, "PN", "S003").exists()  # the unusable product is there to look at
    assert not layout.clean_events(OBS, "PN", "S003").exists()
    check_products_readable(out, [OBS])

    # the report counts and lists them apart from the failures
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"ok": 1}
    assert report["data_quality"] == {"cleaned_events": 1, "exposure_map": 1, "flare_gti": 1, "image": 1}
    (obs,) = report["observations"]
    assert sorted(q["step"] for q in obs["data_quality"]) == ["cleaned_evt_lists", "espfilt", "expmap", "image"]
    assert str(layout.espfilt_gti(OBS, "PN", "S003")) not in obs["products"]
    page = (out / "report.html").read_text()
    assert "4 data-quality outcome(s), not failures" in page and "<h2>Data-quality outcomes</h2>" in page

    # DAXA's records: not successes, worded as no SAS error is; what they feed left out
    recs = read_records(layout, [OBS])
    assert recs.success[MISSION]["espfilt"][f"{OBS}PNS003"] is False
    (said,) = recs.errors[MISSION]["espfilt"][f"{OBS}PNS003"]
    assert said.startswith("data quality, not a SAS error: pnS003-gti.fits: ") and " raised by " not in said
    assert f"{OBS}PNS003" not in recs.success[MISSION]["cleaned_evt_lists"]
    assert recs.success[MISSION]["cleaned_evt_lists"][f"{OBS}M1S001"] is False
    assert recs.success[MISSION]["generate_images_expmaps"] == {f"{OBS}PN": True, f"{OBS}M2": False}
    assert recs.success[MISSION]["merge_subexposures"][f"{OBS}PN"] is True

    # a re-run, the faults gone: an outcome whose inputs did not change is not redone, nor is
    # what it stops run (a re-run of espfilt would now find good time)
    standin.no_faults()
    standin.reset_log()
    again = _run(tmp_path)
    assert again["status"] == "ok" and standin.calls() == []
    assert again["message"] == UP_TO_DATE, again  # the plan-first check knows it finished: no subflow
    assert _statuses(out) == status

    # a raised threshold re-judges what it is about, and only that: every cleaned list has
    # too little good time now (fast mode's lists hold 1 s), espfilt's outcomes stand
    standin.reset_log()
    third = _run(tmp_path, quality={"min_clean_gti": "10 s"})
    assert third["status"] == "ok", third
    assert {c["task"] for c in standin.calls()} == {"evselect"}
    assert {Path(c["cwd"]).name for c in standin.calls()} == {f"{OBS}{u}-cleaned_evt_lists"
                                                              for u in ("PNS004", "PNU002", "M1S001", "M2S002")}
    now = manifest(out, OBS)["records"]
    assert now[f"{OBS}PNS003/espfilt"]["status"] == "data_quality"
    assert {k for k, r in now.items() if r["status"] == "data_quality" and r["step"] == "cleaned_evt_lists"} == {
        f"{OBS}{u}/cleaned_evt_lists" for u in ("PNS004", "PNU002", "M1S001", "M2S002")}
    assert "too little good time (1 s of GTI; needs more than 10 s, quality.min_clean_gti)" in \
        now[f"{OBS}M2S002/cleaned_evt_lists"]["message"]
    assert now[f"{OBS}PN-clean/merge_subexposures"]["status"] == "skipped"
