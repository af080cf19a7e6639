"""What a run publishes: Prefect artifacts, quick-look pictures, the HTML report."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.process_archive import process_archive
from tests.integration.flowkit import config

pytestmark = pytest.mark.usefixtures("prefect_harness")


async def _artifacts(flow_run_id):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def test_artifacts_pictures_and_report(tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.process_archive as pa

    standin.real_products()  # quick-look pictures of real images
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["PN", "M1"])
    before_report: dict[str, set[str]] = {}
    publish = pa._publish

    def watched(layout, outcomes, sas_version):  # type: ignore[no-untyped-def]
        before_report.update({o["obsid"]: {p.name for p in (layout.obs_dir(o["obsid"]) / "quicklook").glob("*.png")}
                              for o in outcomes})
        return publish(layout, outcomes, sas_version)

    monkeypatch.setattr(pa, "_publish", watched)
    state = process_archive(cfg, return_state=True)
    result = state.result()
    assert result["counts"] == {"ok": 1}, result

    # --- Prefect artifacts of this flow run, read back through the API
    arts = {a.key: a for a in asyncio.run(_artifacts(state.state_details.flow_run_id))}
    assert {f"obs-{obsid}", "archive-summary"} <= set(arts), sorted(arts)
    table = arts[f"obs-{obsid}"]
    assert table.type == "table"
    rows = table.data if isinstance(table.data, list) else json.loads(table.data)
    steps = {(r["unit"], r["step"], r["status"]) for r in rows}
    assert (f"{obsid}PNS003", "espfilt", "ok") in steps and (f"{obsid}M1S001", "cleaned_evt_lists", "ok") in steps
    summary = arts["archive-summary"]
    assert summary.type == "markdown" and obsid in summary.data and "ok" in summary.data

    # --- quick-look pictures: espfilt light curves and band images, PNG files
    out = tmp_path / "processed"
    qdir = out / obsid / "quicklook"
    pngs = {p.name for p in qdir.glob("*.png")}
    for name in ("pnS003-lightcurve.png", "mos1S001-lightcurve.png", f"{obsid}_pn_0.50-2.00keVimg.png",
                 f"{obsid}_mos1_0.50-2.00keVimg.png"):
        assert name in pngs, sorted(pngs)
    for p in qdir.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert before_report[obsid] == pngs  # drawn as the observation ended, not by the report at the run's end

    # --- linked from report.html, by paths that resolve from the report's folder
    page = (out / "report.html").read_text()
    links = set(re.findall(r"<img src='([^']+)'", page))
    assert {f"{obsid}/quicklook/{n}" for n in pngs} <= links, (sorted(links), sorted(pngs))
    assert all((out / link).is_file() for link in links)
