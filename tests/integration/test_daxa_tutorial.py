"""DAXA's tutorial ``processing_xmm_pointed.ipynb``, and the record and data-management cells
of ``archives.ipynb`` beside it, cell by cell on the demo archive (issue 31's "Done when").

Each block below stands for one code cell of DAXA's notebooks (DavidT3/DAXA,
``docs/source/notebooks/tutorials/``; the cell's index in the notebook is in its comment).
The cells are changed only in their imports (``flows.daxa_steps`` for ``daxa.*``) and in how
the mission is made (``XMMPointed(odf_folder=...)``: the demo's ODFs instead of a download),
plus the names and ObsIDs they look up, which are the demo's. The SAS stand-in runs the
calls; one espfilt is made to fail, as one did in DAXA's own archive, so the cells that look
up failures have one to find.

Cells not run here, and why:

- archives.ipynb [10]-[17]: ``XMMPointed()``/``Chandra()``/... with ``download()``: they ask
  the XSA and other archives for tables and data (network); the Archive of the processing
  tutorial's cell [6] stands for their Archive.
- archives.ipynb [24]-[28]: ``os.listdir`` of an eROSITA pre-processed download.
- archives.ipynb [109], [111]: region files drawn for DAXA's own ObsIDs (``region_files/``
  of its repository); daxa-xmm keeps no regions (``source_regions``).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive

pytestmark = pytest.mark.usefixtures("prefect_harness")

M = "xmm_pointed"


def _help(thing: object) -> str:
    """What a notebook shows for ``help(thing)``."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        help(thing)
    return out.getvalue()


def test_daxas_xmm_processing_tutorial_and_its_archive_cells_run_on_the_demo(
        tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "archive"
    a, _, c = write_archive(demo, mix="demo")  # what `python -m flows.process_archive --demo` processes
    monkeypatch.chdir(tmp_path)  # DAXA's archives go to ./daxa_output/archives/<name>/
    # as DAXA's archive had (0502671101PNS003 failed espfilt with noCounts)
    standin.faults([{"task": "espfilt", "match": f"{a}PN", "action": "fail", "name": "noCounts",
                     "message": "All histo counts are zero! Check your FOV Lightcurve!"}])

    # ---- processing_xmm_pointed.ipynb -------------------------------------------------
    # [3] imports; was: from daxa.mission import XMMPointed, from daxa.archive import Archive,
    #     from daxa.process.simple import full_process_xmm, from daxa.process.xmm.* import ...
    from flows.daxa_steps import (
        Archive,
        XMMPointed,
        cif_build,
        cleaned_evt_lists,
        cleaned_rgs_event_lists,
        emanom,
        emchain,
        epchain,
        espfilt,
        full_process_xmm,
        generate_images_expmaps,
        merge_subexposures,
        odf_ingest,
        rgs_angles,
        rgs_events,
    )

    # [6] the mission and the archive; was XMMPointed() (the XSA's table) and 'A907'
    xm = XMMPointed(odf_folder=demo)
    xm.filter_on_name([f"SYNTH-{a}", f"SYNTH-{c}"])
    arch = Archive("Abell907", xm)
    assert arch.obsids == [a, c]
    assert arch.archive_path == f"{tmp_path}/daxa_output/archives/Abell907/"

    # [9] the one-line solution
    full_process_xmm(arch)
    assert list(arch.process_success[M])[:2] == ["cif_build", "odf_ingest"]
    assert arch.final_process_success[M] == {a: True, c: True}

    # [17]-[54] help() of each step function: DAXA's arguments, and where it runs
    for step in (cif_build, odf_ingest, emchain, epchain, emanom, espfilt, cleaned_evt_lists, merge_subexposures,
                 generate_images_expmaps, rgs_events, rgs_angles, cleaned_rgs_event_lists):
        shown = _help(step)
        assert f"Help on function {step.__name__} in module flows.daxa_steps" in shown
        assert f"{step.__name__}(obs_archive:" in shown and "num_cores" in shown, shown[:400]
    assert "process_unscheduled: bool = True" in _help(emchain)
    assert "method: str = 'histogram'" in _help(espfilt)
    assert "'(PATTERN <= 4)'" in _help(cleaned_evt_lists)

    # ---- archives.ipynb: loading the archive back ----------------------------------------
    # [34] an archive made earlier, by its name
    prev_arch = Archive("Abell907")
    assert prev_arch.obsids == arch.obsids

    # [36] its summary
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        prev_arch.info()
    assert "Number of missions - 1" in shown.getvalue() and "Fully Processed - True" in shown.getvalue()

    # [38] the class's docstring
    assert "archive_name" in (Archive.__doc__ or "")

    # ---- accessing component missions ----------------------------------------------------
    # [43], [44], [45]
    assert prev_arch["xmm_pointed"] is prev_arch.missions[0]
    assert [m.name for m in prev_arch.missions] == [M]
    assert list(prev_arch["xmm_pointed"].filtered_obs_info["ObsID"]) == [a, c]

    # ---- general properties: [50], [53], [56] -------------------------------------------
    assert prev_arch.archive_name == "Abell907"
    assert Path(prev_arch.archive_path).is_dir() and prev_arch.archive_path.endswith("/")
    assert prev_arch.mission_names == [M]

    # ---- processing-related properties ----------------------------------------------------
    # [61] process_success
    success = prev_arch.process_success
    bad = next(k for k in success[M]["espfilt"] if k.startswith(f"{a}PN"))
    assert success[M]["espfilt"][bad] is False
    assert all(ok for k, ok in success[M]["espfilt"].items() if k != bad)
    # [64] process_names: the steps that ran, in DAXA's order
    assert prev_arch.process_names[M] == list(success[M])
    assert {"cif_build", "odf_ingest", "epchain", "emchain", "espfilt", "cleaned_evt_lists",
            "merge_subexposures"} <= set(prev_arch.process_names[M])
    # [67] one unit's stdout
    good = next(k for k in success[M]["espfilt"] if k.startswith(f"{a}M1"))
    print(prev_arch.process_logs["xmm_pointed"]["espfilt"][good])
    assert "espfilt" in prev_arch.process_logs["xmm_pointed"]["espfilt"][good]
    # [70] raw_process_errors: stderr of the failed unit, {} for the steps without one
    raw = prev_arch.raw_process_errors
    assert "noCounts" in raw[M]["espfilt"][bad] and raw[M]["cif_build"] == {}
    # [73] the parsed errors of that unit, as DAXA words them
    assert prev_arch.process_errors["xmm_pointed"]["espfilt"][bad] == [
        "noCounts raised by espfilt - All histo counts are zero! Check your FOV Lightcurve!"]
    # [76] the parsed warnings, each as DAXA's dict (the demo's calls write none: its shape is held in
    #      tests/unit/test_daxa_records.py)
    warned = [w for steps in prev_arch.process_warnings[M].values() for ws in steps.values() for w in ws]
    assert all(set(w) == {"originator", "name", "message"} for w in warned), warned[:3]
    # [79] extra info: the cleaned lists' paths
    extra = prev_arch.process_extra_info["xmm_pointed"]["cleaned_evt_lists"]
    assert extra and all(Path(e["evt_clean_path"]).is_file() and e["en_key"] == "" for e in extra.values())
    # [82], [85]
    assert prev_arch.final_process_success == {M: {a: True, c: True}}
    summary = prev_arch.observation_summaries["xmm_pointed"][a]
    assert set(summary) == {"PN", "M1", "M2"} and all("exposures" in s for s in summary.values())

    # ---- data management -----------------------------------------------------------------
    # [90], [91] where each observation's data are (nothing is moved to failed_data/ here)
    for obsid in (a, c):
        path = prev_arch.get_current_data_path("xmm_pointed", obsid)
        assert path == f"{prev_arch.archive_path}processed_data/xmm_pointed/{obsid}/" and os.path.isdir(path)
    # [94]
    assert prev_arch.get_failed_processes("espfilt") == {M: [bad]}
    # [97], [100] one observation's PN logs
    assert list(prev_arch.get_process_logs("espfilt", obs_id=a, inst="PN")[M]) == [bad]
    assert "noCounts" in prev_arch.get_process_raw_error_logs("espfilt", obs_id=a, inst="PN")[M][bad]
    # [103], [105], [106]
    logs, errors = prev_arch.get_failed_logs("espfilt")
    assert "espfilt" in logs["xmm_pointed"][bad]
    assert list(errors[M]) == [bad] and "noCounts" in errors[M][bad]
