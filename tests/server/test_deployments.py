"""The two deployments on a real Prefect server, runs started through the REST API as the UI does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.standin.synth import write_archive
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.espfilt import EspfiltConfig
from daxa_xmm.steps.images import ImageConfig
from tests.server.conftest import CRON, DEPLOY_CONFIG, Served

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: to prove nothing was touched."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _manifest(out: Path, obsid: str) -> dict[str, Any]:
    return json.loads((out / obsid / "manifest.json").read_text())


def _calls_for(served: Served, start: int, where: Path) -> list[dict[str, Any]]:
    """Stand-in calls made since ``start`` whose cwd is under ``where``."""
    return [c for c in served.calls()[start:] if str(where) in c.get("cwd", "")]


def test_deployments_schedule_and_parameter_schema(served: Served) -> None:
    on_demand, scheduled = served.on_demand, served.scheduled
    assert on_demand["schedules"] == []
    (sched,) = scheduled["schedules"]
    assert sched["schedule"]["cron"] == CRON and sched["schedule"]["timezone"] == "UTC"
    assert sched["active"] is True
    # issue 11: the UI's Schedules box shows the cron in words without its zone (Prefect 3.8.8):
    # the description, on the deployment's Description tab, names the schedule and its zone
    assert f"`{CRON}` (cron) in UTC" in scheduled["description"]
    assert scheduled["parameters"]["reprocess"] is True
    # the deployments carry exactly the settings serve was given, nothing frozen from this machine
    assert on_demand["parameters"] == {**DEPLOY_CONFIG, "archive": str(served.archive)}

    for dep in (on_demand, scheduled):
        schema = dep["parameter_openapi_schema"]
        props, defs = schema["properties"], schema["definitions"]
        # every setting is on the form, but the switch a server has no use for (issue 11.6)
        shown = set(ProcessingConfig.model_fields) - {"disable_progress"}
        assert shown <= set(props), shown - set(props)
        assert "disable_progress" not in props
        assert ("reprocess" in props) == (dep is scheduled)
        assert schema["required"] == ["archive"]
        for name, prop in props.items():
            assert prop.get("description"), f"{name} has no description in the form"
            assert prop["title"] == name
        # limits reach the form
        assert props["num_cores"]["anyOf"][0]["minimum"] == 1
        assert props["obs_concurrency"]["anyOf"][0]["minimum"] == 1
        assert (props["retries"]["minimum"], props["retries"]["maximum"]) == (0, 10)
        assert props["retries"]["default"] == 2
        assert props["instruments"]["items"]["enum"] == ["PN", "M1", "M2", "R1", "R2"]
        assert props["obsids"]["items"]["pattern"] == r"^\d{10}$"  # a plain list: a bad ObsID is named
        for section, model in (("espfilt", EspfiltConfig), ("clean", CleanEventsConfig), ("images", ImageConfig)):
            ref = props[section]["$ref"].rsplit("/", 1)[-1]
            assert set(defs[ref]["properties"]) == set(model.model_fields), section
            assert props[section]["default"] == model().model_dump(mode="json")
        smooth = defs["EspfiltConfig"]["properties"]["smooth"]
        assert (smooth["minimum"], smooth["maximum"], smooth["default"]) == (1, 60, 51)
        assert defs["EspfiltConfig"]["properties"]["method"]["enum"] == ["histogram", "ratio"]


def test_run_from_api_completes_with_products_and_artifacts(served: Served) -> None:
    base = served.root / "ondemand"
    archive, out = base / "archive", base / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard", start_obsid=300000001)
    # a partial section override, as an API or CLI user would send it
    run = served.run(served.on_demand, {"archive": str(archive), "out": str(out), "espfilt": {"smooth": 41}})
    done = served.wait(run["id"])
    assert done["state_type"] == "COMPLETED", done["state"]["message"]

    manifest = _manifest(out, obsid)
    assert manifest["records"] and all(r["status"] == "ok" for r in manifest["records"].values())
    espfilt = next(r for r in manifest["records"].values() if r["step"] == "espfilt")
    # the run's smooth AND the deployment's allowed_sigma: the section was merged, not replaced
    assert "smooth=41" in espfilt["argv"] and "allowsigma=2.5" in espfilt["argv"], espfilt["argv"]
    assert {r["unit"][10:12] for r in manifest["records"].values()} <= {"", "PN"}  # the deployment's instruments
    merged = out / obsid / "events" / f"{obsid}_pn_merged_clean_evts.fits"
    with fits.open(merged) as hdul:
        assert "EVENTS" in [h.name for h in hdul]

    # issue 11.2: every artifact on the run the user started, the observations directly under it
    own = served.server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    assert {"run-settings", "archive-summary", f"obs-{obsid}"} <= {a["key"] for a in own}, [a["key"] for a in own]
    children = served.server.post("/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [run["id"]]}}})
    assert [c["name"] for c in children] == [f"obs-{obsid}"], [c["name"] for c in children]
    arts = served.artifacts(run["id"])
    settings = json.loads(arts["run-settings"]["data"].split("```json", 1)[1].rsplit("```", 1)[0])
    assert settings["espfilt"]["smooth"] == 41 and settings["espfilt"]["allowed_sigma"] == 2.5
    assert settings["instruments"] == ["PN"] and settings["archive"] == str(archive)
    assert obsid in arts["archive-summary"]["data"] and "ok" in arts["archive-summary"]["data"]
    table = arts[f"obs-{obsid}"]["data"]
    rows = json.loads(table) if isinstance(table, str) else table
    assert any(r["step"] == "espfilt" and r["status"] == "ok" for r in rows)
    assert (out / "report.html").is_file()


SCHEMA_REFUSED = [
    # the server refuses these at once: the form's schema knows enums and patterns
    ({"instruments": ["PN", "EPIC"]}, "instruments"),
    ({"obsids": ["12345"]}, "obsids"),
    ({"retries": 11}, "retries"),
]
FLOW_REFUSED = [
    # these pass the schema and are refused by the flow before anything runs; several bad
    # fields at once are all named in the one message (issue 11.3). Three runs, not one per
    # field: each is a flow run of its own process, run one at a time by the deployment's
    # limit. A section's own cross-field check (lo_en below hi_en) runs only when its fields
    # are valid, and the archive-roots check only when every field is, hence three.
    ({"timeout": "soon", "retry_delay": "-1 s", "images": {"bands": [["2 keV", "0.5 keV"]]},
      "clean": {"pn_filt_expr": ["(PATTERN <= 4"]}},
     "timeout: 'soon'|retry_delay|images.bands[0]|clean.pn_filt_expr"),
    ({"clean": {"lo_en": "5 keV", "hi_en": "1 keV"}, "timeout": "two hours"}, "lo_en|timeout"),
    ({"archive": "/tmp/elsewhere/archive"}, "archive"),
]


def test_invalid_parameters_fail_before_any_sas_call_and_leave_the_archive_untouched(served: Served) -> None:
    base = served.root / "invalid"
    archive, out = base / "archive", base / "processed"
    write_archive(archive, 1, mix="standard", start_obsid=400000001)
    before, n_calls = _tree(served.root), len(served.calls())
    target = {"archive": str(archive), "out": str(out)}

    for params, field in SCHEMA_REFUSED:
        r = served.server.request("POST", f"/deployments/{served.on_demand['id']}/create_flow_run",
                                  json={"parameters": {**target, **params}})
        assert r.status_code in (409, 422), (params, r.status_code, r.text)
        assert field in r.text, (field, r.text)
        assert "anyOf" not in r.text and "is not valid under any of the given schemas" not in r.text, r.text

    runs = [(served.run(served.on_demand, {**target, **params})["id"], field) for params, field in FLOW_REFUSED]
    for run_id, field in runs:
        done = served.wait(run_id)
        assert done["state_type"] == "FAILED", (field, done["state"]["message"])
        message = done["state"]["message"]
        assert "invalid parameters" in message and all(f in message for f in field.split("|")), (field, message)
        logs = served.server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})
        tracebacks = [e["message"][-800:] for e in logs if "Traceback" in e["message"]]
        assert not tracebacks, f"no traceback in the run's log: {tracebacks}"
    assert len(served.calls()) == n_calls, "a refused run must make no SAS call"
    assert not out.exists()
    assert _tree(served.root) == before, "a refused run must leave every file as it was"


def test_two_runs_at_once_on_one_archive_do_not_corrupt_each_other(served: Served) -> None:
    base = served.root / "twice"
    archive, out = base / "archive", base / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard", start_obsid=500000001)
    # run A's cifbuild takes 15 s on this archive only, so run B arrives while A holds the observation
    served.set_faults([{"task": "cifbuild", "match": str(out), "action": "sleep", "seconds": 15, "times": 1}])
    try:
        params = {"archive": str(archive), "out": str(out)}
        a = served.run(served.on_demand, params)
        lock = out / obsid / ".lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()):
            assert time.monotonic() < deadline, "run A never took the observation's lock"
            time.sleep(0.2)
        b = served.run(served.on_demand, params)
        done_b = served.wait(b["id"])
        done_a = served.wait(a["id"])
    finally:
        served.set_faults([])
    assert done_a["state_type"] == "COMPLETED", done_a["state"]["message"]
    # the deployment runs one flow run at a time (ENQUEUE): B waited for A, then found
    # everything done; no run fails for a collision (issue 11.8); the observation lock
    # still guards runs outside the deployment (tests/reliability: locked_by_another_run)
    assert done_b["state_type"] == "COMPLETED", done_b["state"]["message"]
    assert done_b["start_time"] >= done_a["end_time"], (done_a["end_time"], done_b["start_time"])

    manifest = _manifest(out, obsid)
    assert manifest["records"] and all(r["status"] == "ok" for r in manifest["records"].values())
    for rec in manifest["records"].values():
        for product in rec["products"]:
            assert Path(product).exists(), product
            if product.endswith((".fits", ".FIT", ".cif")):
                with fits.open(product) as hdul:
                    assert len(hdul) >= 1
    # every SAS call on this archive was made once, by run A
    units_steps = [(c["task"], c["cwd"], tuple(c["argv"])) for c in _calls_for(served, 0, out)]
    assert len(units_steps) == len(set(units_steps)), "a call ran twice: both runs processed the observation"


def test_scheduled_reprocessing_new_obsids_failed_units_and_changed_calibration(served: Served) -> None:
    archive = served.archive
    out = archive.parent / "processed"
    (first,) = sorted(p.name for p in archive.iterdir())
    # 1. an on-demand run in which espfilt fails for good
    served.set_faults([{"task": "espfilt", "match": str(out), "action": "fail", "name": "noCounts",
                        "message": "All histo counts are zero!"}])
    try:
        done = served.wait(served.run(served.on_demand, {})["id"])
    finally:
        served.set_faults([])
    assert done["state_type"] == "FAILED" and first in done["state"]["message"]
    statuses = {r["step"]: r["status"] for r in _manifest(out, first)["records"].values()}
    assert statuses["espfilt"] == "failed" and statuses["epchain"] == "ok"

    # 2. a new ObsID arrives; the scheduled run (started as the scheduler does: its own parameters)
    (second,) = write_archive(archive, 1, mix="standard", start_obsid=int(first) + 1)
    start = len(served.calls())
    done = served.wait(served.run(served.scheduled)["id"])
    assert done["state_type"] == "COMPLETED", done["state"]["message"]
    calls = _calls_for(served, start, out)
    by_obs = {o: [c["task"] for c in calls if f"/{o}/" in c["cwd"]] for o in (first, second)}
    assert by_obs[first].count("cifbuild") == 1, "only the calibration check ran cifbuild: nothing changed"
    assert any("calcheck" in c["cwd"] for c in calls if f"/{first}/" in c["cwd"] and c["task"] == "cifbuild")
    assert "epchain" not in by_obs[first] and "espfilt" in by_obs[first]  # the failed unit re-ran, nothing upstream
    assert {"cifbuild", "odfingest", "epchain", "espfilt"} <= set(by_obs[second])  # the new ObsID
    summary = served.artifacts(done["id"])["reprocess-summary"]["data"]
    assert second in summary and "espfilt" in summary
    for obsid in (first, second):
        assert all(r["status"] == "ok" for r in _manifest(out, obsid)["records"].values())
    ccf_before = (out / first / "ccf.cif").read_bytes()

    # 3. a new calibration issue: both observations get cifbuild and everything downstream again
    src = Path(served.standin_env["SAS_CCFPATH"]) / "EPN_QUANTUMEF_0019.CCF"
    (served.ccf_extra / "EPN_QUANTUMEF_0020.CCF").write_bytes(src.read_bytes())
    start = len(served.calls())
    done = served.wait(served.run(served.scheduled)["id"])
    assert done["state_type"] == "COMPLETED", done["state"]["message"]
    calls = _calls_for(served, start, out)
    for obsid in (first, second):
        tasks = [c["task"] for c in calls if f"/{obsid}/" in c["cwd"] and "calcheck" not in c["cwd"]]
        assert {"cifbuild", "odfingest", "epchain", "espfilt", "evselect", "eexpmap"} <= set(tasks), (obsid, tasks)
        assert all(r["status"] == "ok" for r in _manifest(out, obsid)["records"].values())
    with fits.open(out / first / "ccf.cif") as hdul:
        assert 20 in list(hdul["CALINDEX"].data["ISSUE"])
    assert (out / first / "ccf.cif").read_bytes() != ccf_before
    summary = served.artifacts(done["id"])["reprocess-summary"]["data"]
    assert "+EPN_QUANTUMEF_0020" in summary and "-EPN_QUANTUMEF_0019" in summary
