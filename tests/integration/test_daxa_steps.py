"""DAXA's step functions run SAS (flows/daxa_steps.py) and keep DAXA's records on disk.

What ran is read from the SAS stand-in's call log and the manifests; what the user sees
from the Archive's records, read again by a new Archive (a new session) where it matters.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daxa_xmm.daxa.records import MISSION, MissingStepError
from daxa_xmm.pipeline.locks import observation_lock
from daxa_xmm.pipeline.uptodate import finished_observations
from daxa_xmm.pipeline.walk import plan_observation
from daxa_xmm.sas import interrupt
from daxa_xmm.sas.environment import detect_sas
from daxa_xmm.standin.install import install_standin
from daxa_xmm.standin.synth import write_archive
from flows import daxa_steps as daxa
from flows import process_archive
from flows.process_archive import run_archive
from tests.integration.flowkit import REPO, call_keys, cli_env, config

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: DAXA's order, as a notebook calls them.
IN_ORDER = (daxa.cif_build, daxa.odf_ingest, daxa.epchain, daxa.emchain, daxa.rgs_events, daxa.rgs_angles,
            daxa.cleaned_rgs_event_lists, daxa.emanom, daxa.espfilt, daxa.cleaned_evt_lists,
            daxa.merge_subexposures, daxa.generate_images_expmaps)


def _records(out: Path, obsid: str) -> dict[str, str]:
    """The status of every manifest record of ``obsid``."""
    records = json.loads((out / obsid / "manifest.json").read_text())["records"]
    return {key: rec["status"] for key, rec in records.items()}


def test_the_readme_walkthrough_runs_the_twelve_functions_and_the_flow_agrees(
        tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    # the README's worked example, as a user runs it (its own demo archive and stand-in)
    done = subprocess.run([sys.executable, str(REPO / "docs" / "daxa_walkthrough.py")], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "errors: none" in done.stdout, done.stdout
    # DAXA's tutorial order: the one-line solution first, on its own archive, with the same records' keys
    assert "same steps and keys as the one-line run: True" in done.stdout, done.stdout
    demo = tmp_path / "daxa-demo"
    one_line = daxa.Archive("one_line", output=demo / "daxa_output")
    assert list(one_line.process_success[MISSION]) == [s.__name__ for s in IN_ORDER]
    assert one_line.final_process_success[MISSION] == {o: True for o in one_line.obsids}

    # records under DAXA's keys, read by a new session on the same folder
    arch = daxa.Archive.from_folders(demo / "archive", demo / "daxa-steps")
    success = arch.process_success[MISSION]
    assert list(success) == [s.__name__ for s in IN_ORDER]
    assert all(ok for by_key in success.values() for ok in by_key.values()), success
    assert arch.final_process_success[MISSION] == {o: True for o in arch.obsids}
    assert arch.process_errors[MISSION] == dict.fromkeys(success, {})  # DAXA's {} for each step that ran
    pn = next(iter(success["epchain"]))
    assert "epchain" in arch.process_logs[MISSION]["epchain"][pn]  # stdout of both runs
    assert Path(arch.process_extra_info[MISSION]["epchain"][pn]["evt_list"]).is_file()

    # the archive flow's calls, no more: one record each, all ok
    cfg = config(tmp_path, archive="daxa-demo/archive", out="daxa-demo/daxa-steps", images={},
                 clean={"filt_mos_anom_state": True})
    for obsid in arch.obsids:
        planned = {f"{c.unit}/{c.step}" for _, c in plan_observation(arch.layout, obsid, cfg, arch.sas_version) if c}
        assert _records(demo / "daxa-steps", obsid) == dict.fromkeys(planned, "ok")

    # with the same fingerprints: on the walkthrough's SAS, the flow finds nothing to redo
    for key, value in install_standin(demo / "sas-standin").items():
        monkeypatch.setenv(key, value)
    made = len(standin.calls())
    assert made > 0  # the walkthrough's calls are in the log too
    assert finished_observations(arch.layout, arch.obsids, cfg, detect_sas().version.raw) == arch.obsids
    with monkeypatch.context() as patch:  # and the subflows themselves, not only the check before them
        patch.setattr(process_archive, "finished_observations", lambda *args, **kw: [])
        flow = run_archive(cfg)
    assert all(o["status"] == "ok" for o in flow["observations"]), flow
    assert standin.calls()[made:] == [], call_keys(standin.calls()[made:], demo / "daxa-steps")


def test_a_failed_unit_is_in_process_errors_and_only_it_stops(tmp_path: Path, standin) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out", instruments=["PN", "M1"])
    bad = f"{a}M1S001"
    standin.faults([{"task": "espfilt", "match": f"{bad}-espfilt", "action": "fail", "name": "noGoodTime"}])
    for step in (daxa.cif_build, daxa.odf_ingest, daxa.epchain, daxa.emchain, daxa.espfilt, daxa.cleaned_evt_lists):
        step(arch, num_cores=2, disable_progress=True)

    success = arch.process_success[MISSION]
    assert success["espfilt"][bad] is False
    assert [k for k, ok in success["espfilt"].items() if not ok] == [bad]
    assert any("noGoodTime" in e for e in arch.process_errors[MISSION]["espfilt"][bad])
    # the unit whose prerequisite failed is recorded and skipped; the others were cleaned
    assert success["cleaned_evt_lists"][bad] is False
    assert "espfilt did not succeed" in arch.process_errors[MISSION]["cleaned_evt_lists"][bad][0]
    assert [k for k, ok in success["cleaned_evt_lists"].items() if not ok] == [bad]
    assert _records(tmp_path / "out", a)[f"{bad}/cleaned_evt_lists"] == "upstream_failed"
    assert set(_records(tmp_path / "out", b).values()) == {"ok"}

    # calling a finished step again does nothing; changing a knob re-runs it
    mark = len(standin.calls())
    daxa.epchain(arch, num_cores=2, disable_progress=True)
    assert standin.calls()[mark:] == []
    daxa.espfilt(arch, ratio=1.5, method="ratio", num_cores=2, disable_progress=True)
    rerun = call_keys(standin.calls()[mark:], tmp_path / "out")
    assert rerun and all(k.endswith("/espfilt") for k in rerun), rerun
    # DAXA's process_configurations: each step's arguments, defaults too, of its latest call
    configured = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out").process_configurations[MISSION]
    assert [next(iter(c)) for c in configured] == ["cif_build", "odf_ingest", "epchain", "emchain", "espfilt",
                                                   "cleaned_evt_lists"]
    espfilt = next(c["espfilt"] for c in configured if "espfilt" in c)
    assert espfilt["ratio"] == 1.5 and espfilt["method"] == "ratio" and espfilt["filter_lo_en"] == "2500.0 eV"


def test_a_step_before_the_one_it_needs_names_it(tmp_path: Path, standin) -> None:
    write_archive(tmp_path / "archive", 1, mix="standard")
    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out")
    with pytest.raises(MissingStepError, match=r"epchain needs odf_ingest first.*run odf_ingest\(archive\)"):
        daxa.epchain(arch)
    with pytest.raises(MissingStepError, match="espfilt needs epchain or emchain"):
        daxa.espfilt(arch)
    assert standin.calls() == []


def test_a_step_runs_inside_a_running_event_loop_and_leaves_a_busy_observation_alone(tmp_path: Path, standin) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out", instruments=["PN"])

    async def notebook_cell() -> None:  # Jupyter runs cells inside its own event loop
        daxa.cif_build(arch, disable_progress=True)

    with observation_lock(arch.layout.obs_dir(b)):  # another run holds b
        asyncio.run(notebook_cell())
    assert arch.process_success[MISSION]["cif_build"] == {a: True}
    asyncio.run(notebook_cell())
    assert arch.process_success[MISSION]["cif_build"] == {a: True, b: True}


def test_ctrl_c_stops_a_step_and_records_the_running_call_interrupted(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out", instruments=["PN"])
    daxa.cif_build(arch, disable_progress=True)
    daxa.odf_ingest(arch, disable_progress=True)
    standin.faults([{"task": "epchain", "match": "withoutoftime=Y", "action": "hang"}])  # the OOT run hangs
    main = threading.get_ident()

    def press_ctrl_c() -> None:  # once the hung call has started, as a user at the keyboard
        for _ in range(1200):
            if any(c["task"] == "epchain" for c in standin.calls()):
                signal.pthread_kill(main, signal.SIGINT)
                return
            time.sleep(0.1)

    # Python's own Ctrl-C handler, as at a terminal (a shell's background job starts with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            daxa.epchain(arch, disable_progress=True)
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupt.reset()  # the stop flag is process-wide: leave none for the next test
    (unit,) = [u.label for u in arch.units(obsid)]
    records = _records(tmp_path / "out", obsid)
    assert records[f"{unit}/epchain_oot"] == "interrupted"
    assert f"{unit}/epchain" not in records or records[f"{unit}/epchain"] == "interrupted"
    pids = [c["pid"] for c in standin.calls() if c["task"] == "epchain"]
    assert pids and not any(Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[1][:3]
                            for p in pids)


def test_full_process_xmm_is_one_archive_run_with_every_steps_records_under_daxas_names(
        tmp_path: Path, standin) -> None:
    import astropy.units as u

    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "out", instruments=["PN", "M1", "R1"])
    daxa.full_process_xmm(arch, 0.3 * u.keV, 8 * u.keV, num_cores=2)

    # the archive flow ran (its report), DAXA's lo_en/hi_en reached the cleaning
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [o["status"] for o in report["observations"]] == ["ok"]
    cleaning = [" ".join(c["argv"]) for c in standin.calls()
                if c["task"] == "evselect" and any(a.startswith("filteredset=") for a in c["argv"])]
    assert cleaning and all("PI in [300:8000]" in argv for argv in cleaning), cleaning[:2]
    # every step's records, under DAXA's names, as the twelve functions would leave them
    success = arch.process_success[MISSION]
    assert list(success) == [s.__name__ for s in IN_ORDER]
    assert all(ok for by_key in success.values() for ok in by_key.values()), success
    assert arch.final_process_success[MISSION] == {obsid: True}
