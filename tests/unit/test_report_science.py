"""The report's science summary per exposure (daxa_xmm.report.science, readings): each number
against a count made here with astropy, on small products built here and on the real SAS
cleaned lists of xmm-samples."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.manifest import Manifest, StepRecord, save_manifest
from daxa_xmm.report import readings
from daxa_xmm.report.archive_report import build_report, write_report
from daxa_xmm.report.readings import ProductCache, chain_list_numbers, cleaned_list_numbers
from daxa_xmm.report.science import CSV_NAME, observation_exposures

OBSID = "0201903501"
BANDS = [(500.0, 2000.0), (2000.0, 10000.0)]


def _events(path: Path, pi: np.ndarray, time: np.ndarray, cards: dict[str, float], gtis: dict[int, list[tuple[float, float]]]) -> None:
    """An event list as SAS writes one: EVENTS (TIME, PI, CCDNR) with its exposure keywords,
    then a STDGTInn table per CCD."""
    events = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=time), fits.Column("PI", "I", array=pi),
                                            fits.Column("CCDNR", "B", array=np.ones(len(pi), np.uint8))], name="EVENTS")
    for key, value in cards.items():
        events.header[key] = value
    hdus = [fits.PrimaryHDU(), events]
    for ccd, rows in gtis.items():
        start, stop = (np.array([r[i] for r in rows], float) for i in (0, 1))
        hdus.append(fits.BinTableHDU.from_columns([fits.Column("START", "D", array=start), fits.Column("STOP", "D", array=stop)],
                                                  name=f"STDGTI{ccd:02d}"))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def _manifest(layout: ArchiveLayout, statuses: dict[tuple[str, str], str], facts: dict[tuple[str, str], dict] | None = None) -> None:
    facts = facts or {}
    m = Manifest(obsid=OBSID)
    for (unit, step), status in statuses.items():
        m.put(StepRecord(step=step, unit=unit, status=status, facts=facts.get((unit, step), {})))  # type: ignore[arg-type]
    save_manifest(m, layout.manifest(OBSID))


@pytest.fixture
def products(tmp_path: Path) -> tuple[ArchiveLayout, dict[str, np.ndarray]]:
    """One MOS1 exposure made by hand: its chain list, espfilt GTI, emanom log and cleaned
    list, with a manifest recording each step ok."""
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    for folder in (layout.events_dir(OBSID), layout.cleaning_dir(OBSID)):
        folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    pi_before = rng.integers(100, 12000, 400).astype(np.int16)
    pi_before[:4] = [500, 2000, 10000, 499]  # the bands' edges are inside them
    t_before = np.sort(rng.uniform(0, 1000, 400))
    _events(layout.chain_events(OBSID, "M1", "S001"), pi_before, t_before, {"ONTIME": 1000.0, "LIVETIME": 990.0},
            {1: [(0.0, 1000.0)]})
    keep = (t_before < 300) | (t_before > 500)
    _events(layout.clean_events(OBSID, "M1", "S001"), pi_before[keep], t_before[keep],
            {"ONTIME01": 800.0, "ONTIME02": 795.0, "ONTIME": 800.0, "LIVETIME": 792.0}, {1: [(0.0, 1000.0)]})
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=[0.0, 500.0]), fits.Column("STOP", "D", array=[300.0, 1000.0])],
                                        name="STDGTI")
    fits.HDUList([fits.PrimaryHDU(), gti]).writeto(layout.espfilt_gti(OBSID, "M1", "S001"))
    layout.emanom_log(OBSID, "M1", "S001").write_text("CCD: 2  Hardness ratio: 0.5  Status: G\nCCD: 7  Status: B\n")
    unit = f"{OBSID}M1S001"
    _manifest(layout, {(unit, s): "ok" for s in ("emchain", "emanom", "espfilt", "cleaned_evt_lists")},
              {(unit, "emchain"): {"mode": "PrimeFullWindow", "filter": "Thin1"},
               (unit, "cleaned_evt_lists"): {"accepted_ccds": [1, 2, 3, 4, 5, 6]},
               (f"{OBSID}M1-0.50-2.00keV", "image"): {"band_ev": [500.0, 2000.0]},
               (f"{OBSID}M1-2.00-10.00keV", "image"): {"band_ev": [2000.0, 10000.0]}})
    return layout, {"pi": pi_before[keep], "before": pi_before}


def test_each_number_is_the_hand_count_of_its_product(products) -> None:
    layout, arrays = products
    (e,) = observation_exposures(layout, OBSID)
    pi = arrays["pi"]
    assert (e.unit, e.instrument, e.exposure, e.mode, e.filter, e.status) == (f"{OBSID}M1S001", "M1", "S001", "PrimeFullWindow", "Thin1", "ok")
    assert e.events_before == len(arrays["before"]) == 400 and e.events_after == len(pi)
    assert e.counts == {"0.50-2.00keV": int(((pi >= 500) & (pi <= 2000)).sum()),
                        "2.00-10.00keV": int(((pi >= 2000) & (pi <= 10000)).sum())}
    assert (e.ontime_s, e.filtered_ontime_s, e.filtered_exposure_s) == (1000.0, 800.0, 792.0)
    assert e.flare_fraction == pytest.approx(0.2)
    with fits.open(layout.espfilt_gti(OBSID, "M1", "S001")) as hdul:
        assert e.espfilt_gti_s == pytest.approx(float((hdul["STDGTI"].data["STOP"] - hdul["STDGTI"].data["START"]).sum())) == 800.0
    assert e.ccd_states == {2: "G", 7: "B"} and e.accepted_ccds == [1, 2, 3, 4, 5, 6] and e.notes == []


def test_the_chains_on_time_falls_back_to_its_per_ccd_keywords_then_its_gtis(tmp_path: Path) -> None:
    path = tmp_path / "chain.fits"
    pi, t = np.array([600, 700], np.int16), np.array([1.0, 2.0])
    _events(path, pi, t, {"ONTIME01": 90.0, "ONTIME04": 120.0}, {1: [(0.0, 50.0)]})
    assert chain_list_numbers(path) == {"events": 2, "ontime_s": 120.0}
    _events(path, pi, t, {}, {1: [(0.0, 50.0), (60.0, 100.0)], 2: [(0.0, 95.0)]})
    assert chain_list_numbers(path) == {"events": 2, "ontime_s": 95.0}  # the longest CCD: 95 s against 90 s
    _events(path, pi, t, {}, {})
    assert chain_list_numbers(path) == {"events": 2, "ontime_s": None}


def test_a_missing_broken_or_not_ok_product_leaves_its_numbers_null_and_says_why(products) -> None:
    layout, _ = products
    layout.chain_events(OBSID, "M1", "S001").unlink()
    layout.espfilt_gti(OBSID, "M1", "S001").write_bytes(b"not FITS at all" * 300)
    unit = f"{OBSID}M1S001"
    _manifest(layout, {(unit, "emchain"): "ok", (unit, "emanom"): "failed", (unit, "espfilt"): "ok",
                       (unit, "cleaned_evt_lists"): "ok", (f"{OBSID}PNS003", "epchain"): "upstream_failed"})
    pn, mos = observation_exposures(layout, OBSID)
    assert (mos.events_before, mos.ontime_s, mos.flare_fraction, mos.espfilt_gti_s, mos.ccd_states) == (None,) * 5
    assert mos.events_after is not None and mos.filtered_ontime_s == 800.0  # what is there is still read
    assert any("MIEVLI0000.FIT missing" in n for n in mos.notes), mos.notes
    assert any("mos1S001-gti.fits unreadable" in n for n in mos.notes) and "emanom failed" in mos.notes
    # an exposure whose chain failed has its line, every number null, and the counts per band
    assert (pn.unit, pn.status, pn.events_before, pn.events_after) == (f"{OBSID}PNS003", None, None, None)
    assert pn.notes == ["epchain upstream_failed"] and pn.counts == {"0.50-2.00keV": None, "2.00-10.00keV": None}
    # and no manifest at all: no exposures, no exception
    layout.manifest(OBSID).write_text("{not json")
    assert observation_exposures(layout, OBSID) == []


def test_a_re_report_reads_only_the_products_that_changed(products, monkeypatch: pytest.MonkeyPatch) -> None:
    layout, _ = products
    first = observation_exposures(layout, OBSID)
    assert layout.report_cache(OBSID).is_file()

    def no_reading(path):  # type: ignore[no-untyped-def]
        raise AssertionError(f"{path} read again")

    monkeypatch.setattr(readings, "read_hdus", no_reading)
    monkeypatch.setattr(readings, "parse_emanom_states", no_reading)
    assert observation_exposures(layout, OBSID) == first  # every number from the cache
    monkeypatch.undo()
    clean = layout.clean_events(OBSID, "M1", "S001")
    _events(clean, np.array([600, 3000, 3100], np.int16), np.array([1.0, 2.0, 3.0]), {"ONTIME": 10.0, "LIVETIME": 9.0}, {})
    (again,) = observation_exposures(layout, OBSID)
    assert (again.events_after, again.counts, again.filtered_ontime_s) == (3, {"0.50-2.00keV": 1, "2.00-10.00keV": 2}, 10.0)
    assert again.events_before == first[0].events_before


def test_the_cache_reads_each_product_once_and_survives_its_own_corruption(tmp_path: Path) -> None:
    product = tmp_path / "p.txt"
    product.write_text("a")
    calls: list[Path] = []

    def reader(path: Path) -> dict:
        calls.append(path)
        return {"n": len(path.read_text())}

    cache = ProductCache(tmp_path / "cache.json", tmp_path)
    assert cache.read(product, "len", reader) == {"n": 1} and cache.read(tmp_path / "absent", "len", reader) is None
    cache.save()
    again = ProductCache(tmp_path / "cache.json", tmp_path)
    assert again.read(product, "len", reader) == {"n": 1} and len(calls) == 1 and again.reads == 0
    assert again.read(product, "other", reader) == {"n": 1} and len(calls) == 2  # another reading, another entry
    product.write_text("abc")
    assert again.read(product, "len", reader) == {"n": 3} and len(calls) == 3
    (tmp_path / "cache.json").write_text("[1, 2")  # a torn or foreign cache: read again, no error
    assert ProductCache(tmp_path / "cache.json", tmp_path).read(product, "len", reader) == {"n": 3} and len(calls) == 4
    broken = ProductCache(tmp_path / "cache.json", tmp_path).read(product, "len", lambda p: {"x": 1 / 0})
    assert broken is not None and broken["error"].startswith("ZeroDivisionError")


def test_report_json_csv_and_html_hold_the_same_numbers(products) -> None:
    layout, _ = products
    report = build_report(layout, [{"obsid": OBSID, "status": "ok"}], "22.1.0")
    js, page = write_report(report, layout.out_root)
    (exp,) = json.loads(js.read_text())["observations"][0]["exposures"]
    assert exp["events_after"] == report.observations[0].exposures[0].events_after and exp["ccd_states"] == {"2": "G", "7": "B"}
    path = layout.out_root / CSV_NAME
    table = Table.read(path, format="ascii.csv")
    assert len(table) == 1 and table["unit"][0] == exp["unit"] and f"{table['obsid'][0]:010d}" == OBSID  # (read as a number)
    for key in ("ontime_s", "filtered_ontime_s", "filtered_exposure_s", "flare_fraction", "espfilt_gti_s", "events_before",
                "events_after"):
        assert table[key][0] == pytest.approx(exp[key]), key
    assert table["counts_0.50-2.00keV"][0] == exp["counts"]["0.50-2.00keV"]
    (row,) = csv.DictReader(path.open())
    assert (row["ccd_states"], row["accepted_ccds"], row["notes"], row["obsid"]) == ("2:G 7:B", "1 2 3 4 5 6", "", OBSID)
    text = page.read_text()
    assert f"<td>{exp['unit']}</td>" in text and "<td>800.0</td><td>792.0</td><td>20.0%</td>" in text
    assert f"<td>{exp['counts']['2.00-10.00keV']}</td>" in text and "2:G 7:B" in text and CSV_NAME in text


def test_real_cleaned_lists_give_their_own_keywords_and_counts(xmm_samples: Path, tmp_path: Path) -> None:
    # the cleaned lists of xmm-samples: ONTIME is the good time left after the selection (the
    # sum of CCD 1's filtered GTI, GTI00006), LIVETIME a little less; STDGTI01 is the chain's
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    layout.events_dir(OBSID).mkdir(parents=True)
    for inst, exp in (("M1", "S001"), ("M2", "S002")):
        src = xmm_samples / "events" / layout.clean_events(OBSID, inst, exp).name  # (the layout names them as SAS's users do)
        shutil.copyfile(src, layout.clean_events(OBSID, inst, exp))
        got = cleaned_list_numbers(src, BANDS)
        with fits.open(src) as hdul:
            ev = hdul["EVENTS"]
            filtered = float((hdul["GTI00006"].data["STOP"] - hdul["GTI00006"].data["START"]).sum())
            chain = float((hdul["STDGTI01"].data["STOP"] - hdul["STDGTI01"].data["START"]).sum())
            pi = ev.data["PI"]
            assert got["events"] == len(ev.data) > 30_000
            assert got["ontime_s"] == pytest.approx(filtered) and got["livetime_s"] == ev.header["LIVETIME"]
            assert got["counts"] == {"0.50-2.00keV": int(((pi >= 500) & (pi <= 2000)).sum()),
                                     "2.00-10.00keV": int(((pi >= 2000) & (pi <= 10000)).sum())}
            assert 0.9 * got["ontime_s"] < got["livetime_s"] < got["ontime_s"] < chain <= ev.header["TELAPSE"]
            assert 0 < sum(got["counts"].values()) <= got["events"]
    _manifest(layout, {(f"{OBSID}M1S001", "emchain"): "ok", (f"{OBSID}M1S001", "cleaned_evt_lists"): "ok",
                       (f"{OBSID}M2S002", "cleaned_evt_lists"): "ok"})
    m1, m2 = observation_exposures(layout, OBSID)
    assert (m1.unit, m2.unit) == (f"{OBSID}M1S001", f"{OBSID}M2S002")
    assert m1.filtered_ontime_s == pytest.approx(9466.79, abs=0.01) and m1.events_after == 31607
    assert m1.ontime_s is None and m1.flare_fraction is None and any("missing" in n for n in m1.notes)  # no chain list here
