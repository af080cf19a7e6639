"""A DAXA notebook's Archive(name, XMMPointed(...)) through the step functions, and the
records DAXA keeps, for what the step functions and the command line made.

The SAS stand-in runs the calls; what the records say is checked against the files on disk
and the stand-in's faults, not against fixed values.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows import daxa_steps as daxa
from flows.process_archive import run_archive
from tests.integration.flowkit import config

pytestmark = pytest.mark.usefixtures("prefect_harness")

M = "xmm_pointed"


def test_a_daxa_archive_runs_and_keeps_daxas_records(tmp_path: Path, standin) -> None:
    a, b = write_archive(tmp_path / "archive", 2, mix="standard")
    mission = daxa.XMMPointed(insts=["PN", "M1"], odf_folder=tmp_path / "archive")
    arch = daxa.Archive("nb", mission, output=tmp_path / "daxa_output")
    bad = f"{a}M1S001"
    standin.faults([{"task": "espfilt", "match": f"{bad}-espfilt", "action": "fail", "name": "noGoodTime"}])
    for step in (daxa.cif_build, daxa.odf_ingest, daxa.epchain, daxa.emchain, daxa.espfilt, daxa.cleaned_evt_lists):
        step(arch, num_cores=2, disable_progress=True)

    # the products are where DAXA's path says
    for obsid in arch.obsids:
        assert (Path(arch.get_current_data_path(M, obsid)) / "manifest.json").is_file()
    assert arch.process_names[M] == list(arch.process_success[M])
    # a step without failures has its empty dict, as in DAXA
    assert arch.process_errors[M]["cif_build"] == {} and arch.raw_process_errors[M]["epchain"] == {}
    assert arch.get_failed_processes("espfilt") == {M: [bad]}
    logs, raw = arch.get_failed_logs("espfilt")
    assert list(logs[M]) == [bad] and "noGoodTime" in raw[M][bad]
    assert arch.get_process_raw_error_logs("espfilt", inst="PN") == {M: {}}
    pn_keys = {k for k in arch.process_success[M]["epchain"]}
    assert set(arch.get_process_logs("epchain", inst="PN")[M]) == pn_keys
    assert set(arch.get_process_logs("cif_build", obs_id=b)[M]) == {b}

    # DAXA's extra info names the files the steps made
    extra = arch.process_extra_info[M]
    for key, ok in arch.process_success[M]["cleaned_evt_lists"].items():
        if ok:
            assert Path(extra["cleaned_evt_lists"][key]["evt_clean_path"]).is_file()
            assert extra["cleaned_evt_lists"][key]["en_key"] == ""
    pn = next(k for k in pn_keys if k.startswith(b))
    assert Path(extra["cleaned_evt_lists"][pn]["oot_evt_clean_path"]).is_file()
    assert Path(extra["espfilt"][pn]["gti_path"]).is_file() and Path(extra["odf_ingest"][b]["sum_path"]).is_file()

    summaries = arch.observation_summaries[M]
    assert set(summaries) == {a, b} and all(set(s) <= {"PN", "M1"} for s in summaries.values())

    # a new session on the same name: the same archive, the same records
    again = daxa.Archive("nb", output=tmp_path / "daxa_output")
    assert again.obsids == arch.obsids and again.process_success == arch.process_success


def test_the_command_lines_products_have_daxas_extra_info(tmp_path: Path, standin) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cfg = config(tmp_path, instruments=["PN", "M1", "M2"], images={})
    flow = run_archive(cfg)
    assert all(o["status"] == "ok" for o in flow["observations"]), flow

    arch = daxa.Archive.from_folders(tmp_path / "archive", tmp_path / "processed", instruments=["PN", "M1", "M2"])
    extra, success = arch.process_extra_info[M], arch.process_success[M]
    assert set(extra) == set(success) and all(arch.process_errors[M][s] == {} for s in success)
    keys = {"epchain": ("evt_list", "oot_evt_list"), "emchain": ("evt_list",), "espfilt": ("gti_path", "all_good_evts"),
            "cleaned_evt_lists": ("evt_clean_path",), "merge_subexposures": ("final_evt", "final_allgood_evt")}
    for step, names in keys.items():
        assert success[step], step
        for key in success[step]:
            for name in names:
                assert Path(extra[step][key][name]).is_file(), (step, key, name)
    assert extra["cif_build"][obsid]["analysis_date"] and extra["cif_build"][obsid]["obs_date"]
