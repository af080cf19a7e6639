"""The report's science summary after a real run on the SAS stand-in (issue 33.4): each
exposure's numbers against a count made here, with astropy, of the products the run made;
the same numbers in exposures.csv, report.html and the run's Prefect table artifact."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.standin.synth import write_archive
from flows.process_archive import process_archive
from tests.integration.flowkit import config

pytestmark = pytest.mark.usefixtures("prefect_harness")

TWO_BANDS = {"bands": [("0.5 keV", "2.0 keV"), ("2.0 keV", "10.0 keV")]}


async def _artifacts(flow_run_id):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def _intervals(table: fits.FITS_rec) -> list[tuple[float, float]]:
    return [(float(r["START"]), float(r["STOP"])) for r in table]


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """The time two lists of good time intervals have in common (each list's own intervals apart)."""
    return sum(max(0.0, min(stop1, stop2) - max(start1, start2)) for start1, stop1 in a for start2, stop2 in b)


def _hand_count(layout: ArchiveLayout, obsid: str, inst: str, exp: str) -> dict:
    """What the summary should say, counted from the products themselves."""
    with fits.open(layout.chain_events(obsid, inst, exp)) as chain, fits.open(layout.clean_events(obsid, inst, exp)) as clean, \
            fits.open(layout.espfilt_gti(obsid, inst, exp)) as gti:
        flare_gti = _intervals(gti["STDGTI"].data)
        per_ccd = [_intervals(h.data) for h in chain if h.name.startswith("STDGTI")]  # the chain's good time, per CCD
        pi = np.asarray(clean["EVENTS"].data["PI"])
        times = np.asarray(clean["EVENTS"].data["TIME"])
        inside = np.zeros(len(times), bool)
        for start, stop in flare_gti:
            inside |= (times >= start) & (times <= stop)
        assert inside.all(), "the cleaned list holds an event outside espfilt's good time"
        return {
            "events_before": len(chain["EVENTS"].data),
            "events_after": len(pi),
            "ontime_s": max(sum(stop - start for start, stop in ccd) for ccd in per_ccd),
            "filtered_ontime_s": max(_overlap(ccd, flare_gti) for ccd in per_ccd),
            "espfilt_gti_s": sum(stop - start for start, stop in flare_gti),
            "counts": {"0.50-2.00keV": int(((pi >= 500) & (pi <= 2000)).sum()),
                       "2.00-10.00keV": int(((pi >= 2000) & (pi <= 10000)).sum())},
            "ccds": sorted(set(np.asarray(clean["EVENTS"].data["CCDNR"]).tolist())),
        }


def test_each_exposures_summary_is_the_hand_count_of_its_products(tmp_path: Path, standin) -> None:
    standin.real_products()  # real event lists, GTIs and emanom verdicts
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["PN", "M1"], images=TWO_BANDS, clean={"filt_mos_anom_state": True})
    state = process_archive(cfg, return_state=True)
    assert state.result()["counts"] == {"ok": 1}, state.result()
    out = tmp_path / "processed"
    layout = ArchiveLayout(tmp_path / "archive", out)

    (obs,) = json.loads((out / "report.json").read_text())["observations"]
    by_unit = {e["unit"]: e for e in obs["exposures"]}
    assert sorted(by_unit) == [f"{obsid}M1S001", f"{obsid}PNS003"]
    for unit, e in by_unit.items():
        want = _hand_count(layout, obsid, e["instrument"], e["exposure"])
        assert e["unit"] == f"{obsid}{e['instrument']}{e['exposure']}" and e["status"] == "ok" and e["notes"] == []
        assert (e["events_before"], e["events_after"], e["counts"]) == (want["events_before"], want["events_after"], want["counts"])
        assert e["events_after"] < e["events_before"] and sum(e["counts"].values()) <= e["events_after"]
        for key in ("ontime_s", "filtered_ontime_s", "espfilt_gti_s"):
            assert e[key] == pytest.approx(want[key]), (unit, key)
        assert e["flare_fraction"] == pytest.approx(1 - want["filtered_ontime_s"] / want["ontime_s"])
        assert 0 < e["flare_fraction"] < 1, "the stand-in's light curves flare: some time must be cut"
        assert 0.9 * e["filtered_ontime_s"] < e["filtered_exposure_s"] < e["filtered_ontime_s"]  # dead time, a little
        if e["instrument"] == "PN":
            assert e["ccd_states"] is None and e["accepted_ccds"] is None
        else:  # emanom ran: its verdict, and the cleaning kept the CCDs it did not refuse (CCD 1 is never judged)
            states = {int(c): s for c, s in e["ccd_states"].items()}
            assert set(states) <= set(range(2, 8)) and set(states.values()) <= set("GIBOU")
            assert e["accepted_ccds"] == [c for c in range(1, 8) if states.get(c, "G") in "GIU"]
            assert set(want["ccds"]) <= set(e["accepted_ccds"])

    # --- the same numbers in the archive's CSV, sortable and loadable
    table = Table.read(out / "exposures.csv", format="ascii.csv")
    assert sorted(table["unit"]) == sorted(by_unit)
    for row in table:
        e = by_unit[row["unit"]]
        for key in ("ontime_s", "filtered_ontime_s", "filtered_exposure_s", "flare_fraction", "events_before", "events_after"):
            assert row[key] == pytest.approx(e[key]), key
        assert (row["counts_0.50-2.00keV"], row["counts_2.00-10.00keV"]) == (e["counts"]["0.50-2.00keV"], e["counts"]["2.00-10.00keV"])

    # --- in report.html, and in the run's table artifact
    page = (out / "report.html").read_text()
    for e in by_unit.values():
        assert f"<td>{e['unit']}</td>" in page and f"<td>{e['events_after']}</td>" in page
        assert f"<td>{100 * e['flare_fraction']:.1f}%</td>" in page
    arts = {a.key: a for a in asyncio.run(_artifacts(state.state_details.flow_run_id))}
    table_art = arts[f"exposures-{obsid}"]
    rows = table_art.data if isinstance(table_art.data, list) else json.loads(table_art.data)
    assert {r["unit"]: r["events_after"] for r in rows} == {u: e["events_after"] for u, e in by_unit.items()}

    # --- a re-run (nothing to redo) reports the same numbers from the cache
    assert json.loads(layout.report_cache(obsid).read_text())["entries"]
    again = process_archive(cfg)
    assert again["counts"] == {"ok": 1}
    (obs2,) = json.loads((out / "report.json").read_text())["observations"]
    assert obs2["exposures"] == obs["exposures"]
