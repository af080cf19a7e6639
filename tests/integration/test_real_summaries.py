"""Every step of the real observations in xmm-samples, end to end against the stand-in.

The ODFs are written from the real odfingest summaries (``synth.spec_from_summary``), gzipped
as the archive may deliver them, so the pipeline selects exactly the PN, MOS and RGS units
real SAS would see, and every call must leave what SAS's documentation says it leaves
(docs/SAS_FIDELITY.md): the stand-in was written from those pages, not from the builders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daxa_xmm.odf.selection import select_units
from daxa_xmm.odf.summary import read_odf_summary
from daxa_xmm.standin.synth import spec_from_summary, write_odf
from flows.process_archive import run_archive
from tests.integration.flowkit import config, manifest_records

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

INSTRUMENTS = ["PN", "M1", "M2", "R1", "R2"]
#: The calls each kind of unit makes, in order (manifest step names).
UNIT_STEPS = {
    "PN": ["epchain_oot", "epchain", "espfilt", "cleaned_evt_lists", "cleaned_evt_lists_oot"],
    "M1": ["emchain", "emanom", "espfilt", "cleaned_evt_lists"],
    "M2": ["emchain", "emanom", "espfilt", "cleaned_evt_lists"],
    "R1": ["rgs_events", "rgs_angles", "cleaned_rgs_event_lists"],
    "R2": ["rgs_events", "rgs_angles", "cleaned_rgs_event_lists"],
}


def test_every_step_of_the_real_summaries(tmp_path: Path, standin, xmm_samples: Path) -> None:
    standin.real_products()  # every step of every real unit, products and all
    summaries = [read_odf_summary(p) for p in sorted((xmm_samples / "odf_summaries").glob("*SUM.SAS"))]
    assert summaries, "no odfingest summary in xmm-samples"
    for s in summaries:
        write_odf(tmp_path / "archive", s.observation.obsid, spec_from_summary(s), gzip=True)
    cfg = config(tmp_path, instruments=INSTRUMENTS, clean={"filt_mos_anom_state": True})
    result = run_archive(cfg)
    assert [o["status"] for o in result["observations"]] == ["ok"] * len(summaries), result

    out = tmp_path / "processed"
    for s in summaries:
        obsid = s.observation.obsid
        records = manifest_records(out, obsid)
        assert all(r["status"] == "ok" for r in records.values()), {k: r["message"] for k, r in records.items()
                                                                    if r["status"] != "ok"}
        units = select_units(s, instruments=tuple(INSTRUMENTS), process_unscheduled=False)
        assert {u.inst for u in units} == set(INSTRUMENTS)  # PN, MOS and RGS units all present
        for u in units:
            assert [k.split("/")[1] for k in records if k.startswith(f"{u.label}/")] == UNIT_STEPS[u.inst], u.label
        # the gzipped ODF was unpacked beside the products; the archive was not touched
        assert not list((tmp_path / "archive" / obsid).glob("*.FIT"))
        assert list((out / obsid / "odf").glob("*.FIT"))
        # epchain: the OOT run made the attitude file; the normal run made only its list
        pn = next(u for u in units if u.inst == "PN")
        assert Path(records[f"{pn.label}/epchain_oot"]["products"][1]).name == f"P{obsid}OBX000ATTTSR0000.FIT"
        assert [Path(p).name for p in records[f"{pn.label}/epchain"]["products"]] == [
            f"P{obsid}PN{pn.exp_id}PIEVLI0000.FIT"]
        # emanom wrote keywords into emchain's list: the manifest says so
        m1 = next(u for u in units if u.inst == "M1")
        assert records[f"{m1.label}/emanom"]["modified"] == [str(out / obsid / "events" / f"P{obsid}M1S001MIEVLI0000.FIT")]
        # rgsproc: the merged list modified by angles, EVENLI the product
        r1 = next(u for u in units if u.inst == "R1")
        assert records[f"{r1.label}/rgs_angles"]["modified"][0].endswith(f"P{obsid}R1{r1.exp_id}merged0000.FIT")
        assert Path(records[f"{r1.label}/cleaned_rgs_event_lists"]["products"][0]).is_file()
        # the merges: cleaned lists in events/, espfilt's all-good lists in background/
        for name in ("pn", "mos1", "mos2"):
            assert (out / obsid / "events" / f"{obsid}_{name}_merged_clean_evts.fits").is_file()
            assert (out / obsid / "background" / f"{obsid}_{name}_merged_allevc_evts.fits").is_file()
            assert (out / obsid / "images" / f"{obsid}_{name}_0.50-2.00keVexpmap.fits").is_file()
        assert (out / obsid / "background" / f"{obsid}_pn_merged_allevcoot_evts.fits").is_file()
        # cifbuild ran with analysisdate=now: the manifest holds the date it used
        cif = records[f"{obsid}/cif_build"]
        assert "analysisdate=now" in cif["argv"] and cif["facts"]["analysis_date"][:2] == "20"

    # the calls really made were accepted by the documented parameter tables: none failed
    calls = standin.calls()
    assert calls and all(c["exit"] == 0 for c in calls)
    assert json.loads((out / "report.json").read_text())["observations"][0]["status"] == "ok"


def test_the_real_sas_suite_runs(tmp_path: Path, standin, xmm_samples: Path) -> None:
    """``pytest -m sas`` is only useful if it runs: here against the stand-in, on an ODF
    written from the real summary, so a broken real-SAS test is caught without SAS. The
    stand-in stays in fast mode (right names, placeholder contents): what real products hold
    is the test above's; here it is whether the real-SAS tests run and read what they expect."""
    import os
    import subprocess
    import sys

    from tests.conftest import PREFECT_API_VAR
    from tests.integration.flowkit import REPO, harness_api_url

    s = read_odf_summary(next((xmm_samples / "odf_summaries").glob("*SUM.SAS")))
    odf = write_odf(tmp_path / "archive", s.observation.obsid, spec_from_summary(s))
    # the child's flow runs go to this session's Prefect backend rather than starting one
    env = {**os.environ, "DAXA_XMM_TEST_ODF": str(odf), "DAXA_XMM_TEST_ALLOW_STANDIN": "1",
           PREFECT_API_VAR: harness_api_url(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    # -n 0: the suite runs its module's one real-SAS run in one process (not once per worker)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "sas", "-n", "0", "-p", "no:cacheprovider", "-q",
                           str(REPO / "tests" / "sas")], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "4 passed" in proc.stdout, proc.stdout[-2000:]
