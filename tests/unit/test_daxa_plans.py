"""The seed API: DAXA's names and parameters, per-observation isolation, argument checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import astropy.units as u
import pytest

from daxa_xmm.daxa import plans as daxa_plans
from daxa_xmm.daxa.archive import Archive
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.plan import EXAMPLE_SUMMARY
from daxa_xmm.sas.calls import StepPlan

GOOD, BAD, MISSING = "0123456789", "0000000002", "0000000003"


@pytest.fixture()
def archive(tmp_path: Path) -> Archive:
    """Three ObsIDs: one with a good summary, one with a corrupt one, one with none."""
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    for o in (GOOD, BAD, MISSING):
        (tmp_path / "raw" / o).mkdir(parents=True)
    shutil.copy(EXAMPLE_SUMMARY, tmp_path / "raw" / GOOD / f"0001_{GOOD}_SCX00000SUM.ASC")
    (layout.obs_dir(GOOD)).mkdir(parents=True)
    shutil.copy(EXAMPLE_SUMMARY, layout.obs_dir(GOOD) / EXAMPLE_SUMMARY.name)
    layout.obs_dir(BAD).mkdir(parents=True)
    (layout.obs_dir(BAD) / f"0002_{BAD}_SCX00000SUM.SAS").write_text("this is not a summary\n")
    return Archive(layout, "22.1.0")


SEEDS = [
    daxa_plans.epchain, daxa_plans.emchain, daxa_plans.rgs_events, daxa_plans.rgs_angles, daxa_plans.cleaned_rgs_event_lists, daxa_plans.emanom,
    daxa_plans.espfilt, daxa_plans.cleaned_evt_lists, daxa_plans.merge_subexposures, daxa_plans.generate_images_expmaps,
]


@pytest.mark.parametrize("fn", SEEDS, ids=lambda f: f.__name__)
def test_bad_observation_is_isolated(archive: Archive, fn) -> None:
    plan = fn(archive)
    assert isinstance(plan, StepPlan) and len(tuple(plan)) == 7
    assert plan.calls(), "the good observation is planned"
    assert set(plan.commands) == {GOOD, BAD, MISSING}
    for obsid in (BAD, MISSING):
        assert plan.commands[obsid] == {}
        assert "error" in plan.extra_info[obsid]
    assert "run odf_ingest first" in plan.extra_info[MISSING]["error"]


def test_cif_build_and_odf_ingest(archive: Archive) -> None:
    cif = daxa_plans.cif_build(archive, analysis_date="2020-01-01", timeout=2 * u.hour)
    (call,) = cif.commands[GOOD][GOOD]
    assert "observationdate=2001-01-01" in call.argv and "analysisdate=2020-01-01" in call.argv
    assert call.timeout_s == 7200 and cif.timeout == 2 * u.hour
    assert "error" in cif.extra_info[BAD]  # no SUM.ASC in its ODF folder
    odf = daxa_plans.odf_ingest(archive)
    assert odf.commands[GOOD][GOOD][0].outputs[0].name == f"0001_{GOOD}_SCX00000SUM.SAS"


def test_seven_tuple_unpacks(archive: Archive) -> None:
    commands, final_paths, extra, message, cores, hide, timeout = daxa_plans.epchain(
        archive, num_cores=3, disable_progress=True
    )
    assert set(commands[GOOD]) == {f"{GOOD}PNS003", f"{GOOD}PNU002"}
    assert cores == 3 and hide is True and timeout is None and "PN" in message
    assert final_paths[GOOD][f"{GOOD}PNS003"][0].name == f"P{GOOD}PNS003OOEVLI0000.FIT"
    assert extra[GOOD][f"{GOOD}PNS003"]["oot_evt_list"].endswith("OOEVLI0000.FIT")


def test_process_unscheduled_false_drops_u_exposures(archive: Archive) -> None:
    plan = daxa_plans.epchain(archive, process_unscheduled=False)
    assert set(plan.commands[GOOD]) == {f"{GOOD}PNS003"}


def test_merge_single_and_multiple(archive: Archive) -> None:
    plan = daxa_plans.merge_subexposures(archive)
    assert len(plan.commands[GOOD][f"{GOOD}PN-clean"]) == 1  # S003 + U002
    (copy,) = plan.commands[GOOD][f"{GOOD}M1-clean"]  # a placement: one call, no SAS task
    info = plan.extra_info[GOOD][f"{GOOD}M1-clean"]
    assert info["single_source"].endswith("_mos1_S001_clean_evts.fits") and copy.placed_from == Path(info["single_source"])
    assert plan.final_paths[GOOD][f"{GOOD}M1-clean"] == [Path(info["dest"])]


def test_images_default_bands(archive: Archive) -> None:
    plan = daxa_plans.generate_images_expmaps(archive)
    assert sorted(plan.commands[GOOD]) == sorted(
        f"{GOOD}{i}-{b}" for i in ("PN", "M1", "M2") for b in ("0.50-2.00keV", "2.00-10.00keV")
    )


def test_cleaned_evt_lists_energy_and_anomalous_ccds(archive: Archive, tmp_path: Path) -> None:
    log = archive.layout.emanom_log(GOOD, "M1", "S001")
    log.parent.mkdir(parents=True)
    # emanom judges chips 2-7 only: the central CCD 1 is not in its log and must be kept
    log.write_text("".join(f"CCD: {c}  Hardness: 0.5  Status: {s}\n" for c, s in zip(range(2, 8), "GBGOIU", strict=True)))
    plan = daxa_plans.cleaned_evt_lists(archive, lo_en=0.5 * u.keV, hi_en="2 keV", filt_mos_anom_state=True)
    m1 = plan.commands[GOOD][f"{GOOD}M1S001"][0]
    expr = next(a for a in m1.argv if a.startswith("expression="))
    assert "(PI in [500:2000])" in expr
    # M2 has no emanom log: an honest error for that unit, not an unfiltered list
    assert plan.commands[GOOD][f"{GOOD}M2S002"] == []
    assert "emanom log" in plan.extra_info[GOOD][f"{GOOD}M2S002"]["error"]
    # B (3) and O (5) dropped; 1 (not judged) kept; this M1 exposure has lost CCD 6
    assert expr.endswith("(CCDNR in 1,2,4,7)")


@pytest.mark.parametrize(
    ("fn", "kwargs", "words"),
    [
        (daxa_plans.epchain, dict(timeout=5 * u.m), "timeout"),
        (daxa_plans.epchain, dict(timeout=5), "timeout"),
        # issue 30.4: DAXA's timeout follows the run's one rule (it took anything above 0)
        (daxa_plans.epchain, dict(timeout=0.5 * u.s), "at least 1 s"),
        (daxa_plans.epchain, dict(num_cores=0), "num_cores"),
        (daxa_plans.cleaned_evt_lists, dict(lo_en=0.5, hi_en=2.0), "lo_en"),
        (daxa_plans.cleaned_evt_lists, dict(lo_en=0.5 * u.keV), "lo_en and hi_en"),
        (daxa_plans.espfilt, dict(method="median"), "method"),
        (daxa_plans.espfilt, dict(with_binning=0.5 * u.s), "binsize"),
        (daxa_plans.espfilt, dict(with_smoothing=3 * u.keV), "with_smoothing"),
        (daxa_plans.espfilt, dict(filter_lo_en=9 * u.keV), "filter_hi_en"),
        (daxa_plans.espfilt, dict(range_scale={"pn": 1}), "range_scale"),
        (daxa_plans.generate_images_expmaps, dict(lo_en=u.Quantity([0.5], "keV")), "same number"),
        (daxa_plans.cif_build, dict(analysis_date="soon"), "analysis_date"),
    ],
)
def test_argument_errors_name_the_argument(archive: Archive, fn, kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        fn(archive, **kwargs)


def test_not_an_archive() -> None:
    with pytest.raises(ConfigError, match="Archive"):
        daxa_plans.epchain("archive")  # type: ignore[arg-type]


def test_the_seed_plans_are_the_archive_flows_calls(archive: Archive) -> None:
    """The seed walks the pipeline's table: with the same settings, its steps together plan
    exactly the calls ``--dry-run`` lists for the archive flow, argv, folders and outputs
    alike (so a DAXA step function leaves the flow's records). Knobs set away from their
    defaults reach both."""
    from daxa_xmm.config import ProcessingConfig
    from daxa_xmm.pipeline.walk import plan_observation

    knobs = dict(method="ratio", ratio=1.4)
    clean = dict(lo_en=300 * u.eV, hi_en=10 * u.keV, filt_mos_anom_state=False)
    cfg = ProcessingConfig(archive=archive.layout.raw_root, out=archive.layout.out_root, timeout="1 h",
                           espfilt=knobs, clean=clean, images={"bands": [["1 keV", "3 keV"]]})
    flow = [call for _, call in plan_observation(archive.layout, GOOD, cfg, archive.sas_version) if call is not None]

    t = 1 * u.hour
    plans = [daxa_plans.cif_build(archive, timeout=t), daxa_plans.odf_ingest(archive, timeout=t)]
    plans += [fn(archive, timeout=t) for fn in (daxa_plans.epchain, daxa_plans.emchain, daxa_plans.rgs_events, daxa_plans.rgs_angles,
                                                daxa_plans.cleaned_rgs_event_lists, daxa_plans.emanom)]
    plans += [daxa_plans.espfilt(archive, timeout=t, **knobs), daxa_plans.cleaned_evt_lists(archive, timeout=t, **clean),
              daxa_plans.merge_subexposures(archive, timeout=t),
              daxa_plans.generate_images_expmaps(archive, lo_en=[1] * u.keV, hi_en=[3] * u.keV, timeout=t)]
    planned = [c for p in plans for calls in p.commands[GOOD].values() for c in calls]

    def key(c):
        return (c.unit, c.step)

    assert len(flow) > 20 and sorted(planned, key=key) == sorted(flow, key=key)
    assert any("ratio" in a for c in planned if c.task == "espfilt" for a in c.argv)
