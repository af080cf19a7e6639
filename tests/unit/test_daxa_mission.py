"""XMMPointed for a local archive (daxa_xmm/daxa/mission.py, mission_table.py, mission_filters.py)
and the Archive built from it as DAXA builds one (daxa_xmm/daxa/archive_build.py).

The archives are synthetic ODFs written with known pointings, times and targets; what the
mission reads back is compared with what was written.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from daxa_xmm.daxa.archive import Archive
from daxa_xmm.daxa.mission import MissionLockedError, NoObsAfterFilterError, XMMPointed, XsaOnlyError
from daxa_xmm.errors import ConfigError
from daxa_xmm.odf.proposal import read_proposal
from daxa_xmm.standin.synth import MIXES, ObsSpec, write_odf

T0 = datetime(2010, 3, 1, 12, 0, 0)
#: ObsID -> (RA deg, Dec deg, start, duration s, target); A and B are 10 arcmin apart
SPECS = {
    "0100000001": (150.0, 2.0, T0, 3600.0, "Abell 1795"),
    "0100000002": (150.0, 2.0 + 10 / 60, T0 + timedelta(days=30), 7200.0, "NEIGHBOUR"),
    "0100000003": (30.0, -40.0, T0 + timedelta(days=400), 1800.0, "FAR AWAY"),
}


@pytest.fixture
def odfs(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    for obsid, (ra, dec, start, dur, target) in SPECS.items():
        exposures = MIXES["standard"] if obsid != "0100000003" else MIXES["closed_filter"]
        write_odf(root, obsid, ObsSpec(start=start, duration_s=dur, exposures=exposures, ra_deg=ra, dec_deg=dec, target=target))
    return root


def test_the_table_holds_what_the_odfs_say(odfs: Path) -> None:
    table = XMMPointed(odf_folder=odfs).all_obs_info
    assert list(table["ObsID"]) == sorted(SPECS)
    for row in table:
        ra, dec, start, dur, target = SPECS[row["ObsID"]]
        assert row["ra"] == pytest.approx(ra, abs=1e-5) and row["dec"] == pytest.approx(dec, abs=1e-6)
        assert row["start"].datetime == start and row["duration"] == pytest.approx(dur)
        assert (row["end"] - row["start"]).to_value(u.s) == pytest.approx(dur)
        assert row["target"] == target and row["science_usable"] and row["proprietary_usable"]
    written = {e.inst for e in MIXES["standard"]}
    assert set(table["instruments"][0].split(",")) == written


def test_the_proposal_reader_reads_the_real_sample_in_degrees() -> None:
    sample = Path(__file__).parents[3] / "shared" / "xmm-samples" / "odf_summaries" / "0828_0201903501_SCX00000SUM.SAS"
    if not sample.exists():
        pytest.skip(f"the real samples are not at {sample}")
    found = read_proposal(sample)
    # the target's name says where it is: RXCJ0958.3-1103 is at 09h58.3m, -11d03m
    assert found is not None and found.target == "RXCJ0958.3-1103"
    assert found.ra_deg == pytest.approx((9 + 58.3 / 60) * 15, abs=0.05)
    assert found.dec_deg == pytest.approx(-(11 + 3 / 60), abs=0.02)


def test_an_odf_without_a_readable_sum_asc_is_listed_but_not_selected(odfs: Path) -> None:
    (odfs / "0100000009").mkdir()
    mission = XMMPointed(odf_folder=odfs)
    assert "0100000009" in list(mission.obs_ids)
    assert "0100000009" not in list(mission.filtered_obs_ids) and len(mission) == len(SPECS)
    assert math.isnan(mission.all_obs_info["ra"][list(mission.obs_ids).index("0100000009")])


def test_what_only_the_archive_service_knows_is_refused_with_what_to_pass(odfs: Path) -> None:
    with pytest.raises(XsaOnlyError, match="odf_folder="):
        XMMPointed()
    with pytest.raises(XsaOnlyError, match="HEASARC"):
        XMMPointed(use_heasarc=True, odf_folder=odfs)
    mission = XMMPointed(odf_folder=odfs)
    with pytest.raises(XsaOnlyError, match="filter_on_positions"):
        mission.filter_on_name("Abell 1795", parse_name=True)
    with pytest.raises(XsaOnlyError, match="target type"):
        mission.filter_on_target_type("GCL")


def test_filters_narrow_in_turn_and_are_recorded(odfs: Path) -> None:
    mission = XMMPointed(odf_folder=odfs)
    mission.filter_on_obs_ids(["0100000003"], invert=True)
    assert list(mission.filtered_obs_ids) == ["0100000001", "0100000002"]
    mission.filter_on_time(T0 + timedelta(days=29), T0 + timedelta(days=31))
    assert list(mission.filtered_obs_ids) == ["0100000002"]
    assert [op["name"] for op in mission.filtering_operations] == ["filter_on_obs_ids", "filter_on_time"]
    mission.reset_filter()
    assert len(mission) == len(SPECS) and mission.filtering_operations == []


def test_positions_use_daxas_default_radius_and_report_the_matches(odfs: Path) -> None:
    mission = XMMPointed(odf_folder=odfs)
    a = SkyCoord(150.0 * u.deg, 2.0 * u.deg)
    found = mission.filter_on_positions([[a.ra.deg, a.dec.deg], [0.0, 0.0]], return_pos_obs_info=True)
    # 1.2 x 15 arcmin takes in the neighbour 10 arcmin away, not the far one
    assert list(mission.filtered_obs_ids) == ["0100000001", "0100000002"]
    assert found is not None and list(found["pos_ind"]) == [0]
    assert found["ObsIDs"][0].split(",") == ["0100000001", "0100000002"]
    mission.reset_filter()
    mission.filter_on_positions(a, search_distance=5 * u.arcmin)
    assert list(mission.filtered_obs_ids) == ["0100000001"]


def test_a_filter_that_leaves_nothing_selects_nothing(odfs: Path) -> None:
    mission = XMMPointed(odf_folder=odfs)
    with pytest.raises(NoObsAfterFilterError):
        mission.filter_on_rect_region([0.0, 80.0], [10.0, 85.0])
    assert len(mission) == 0


def test_time_windows_overlap_or_contain_as_daxa_says(odfs: Path) -> None:
    mission = XMMPointed(odf_folder=odfs)
    half = T0 + timedelta(minutes=30)  # inside the first observation, which lasts an hour
    mission.filter_on_time(half, half + timedelta(days=1))
    assert list(mission.filtered_obs_ids) == ["0100000001"]
    mission.reset_filter()
    with pytest.raises(NoObsAfterFilterError):
        mission.filter_on_time(half.replace(tzinfo=timezone.utc), half + timedelta(days=1), over_run=False)


def test_names_match_the_proposals_targets_and_their_neighbours(odfs: Path) -> None:
    mission = XMMPointed(odf_folder=odfs)
    mission.filter_on_name("abell1795", search_distance=1 * u.arcmin)
    assert list(mission.filtered_obs_ids) == ["0100000001"]
    mission.reset_filter()
    mission.filter_on_name(["Abell 1795"])  # default radius: the neighbour too, as a Sesame position would give
    assert list(mission.filtered_obs_ids) == ["0100000001", "0100000002"]


def test_instruments_take_daxas_names(odfs: Path) -> None:
    mission = XMMPointed(insts=["pn", "MOS1"], odf_folder=odfs)
    assert mission.chosen_instruments == ["PN", "M1"]
    with pytest.raises(ConfigError, match="XMM-Newton"):
        XMMPointed(insts=["ACIS"], odf_folder=odfs)


def test_archive_of_a_mission_as_daxa_builds_it(odfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mission = XMMPointed(insts=["PN", "M1", "OM"], odf_folder=odfs)
    mission.filter_on_obs_ids(["0100000001", "0100000002"])
    arch = Archive("my_arch", mission, output=tmp_path / "out")  # no SAS needed to make it
    assert arch["xmm_pointed"] is mission and arch[0] is mission and list(arch) == [mission] and len(arch) == 1
    assert arch.obsids == list(mission.filtered_obs_ids) and arch.instruments == ("PN", "M1")
    assert arch.archive_name == "my_arch" and arch.mission_names == ["xmm_pointed"]
    assert Path(arch.archive_path) == tmp_path / "out" / "archives" / "my_arch"
    assert arch.get_current_data_path("xmm_pointed", "0100000001") == f"{arch.layout.obs_dir('0100000001')}/"
    assert Path(arch.get_current_data_path(mission, "0100000001")).is_relative_to(Path(arch.archive_path))
    with pytest.raises(ValueError):
        arch.get_current_data_path("erosita_calpv", "0100000001")
    with pytest.raises(MissionLockedError):
        mission.filter_on_obs_ids("0100000001")
    arch.info()
    shown = capsys.readouterr().out
    assert "my_arch" in shown and "Number of observations - 2" in shown and "Chosen instruments - PN, M1, OM" in shown

    # a new session: the archive is read back, with the selection it had
    again = Archive("my_arch", output=tmp_path / "out")
    assert again.obsids == arch.obsids and again["xmm_pointed"].chosen_instruments == mission.chosen_instruments
    with pytest.warns(UserWarning, match="clobber=True"):
        fresh = Archive("my_arch", XMMPointed(odf_folder=odfs), clobber=True, output=tmp_path / "out")
    assert fresh.obsids == sorted(SPECS)


def test_daxas_constructor_refuses_what_it_cannot_do(odfs: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missions"):
        Archive("nothing_yet", output=tmp_path)
    with pytest.raises(ConfigError, match="use_preprocessed"):
        Archive("pre", XMMPointed(odf_folder=odfs), use_preprocessed=True, output=tmp_path)
    with pytest.raises(ConfigError, match="XMMPointed"):
        Archive("wrong", ["not a mission"], output=tmp_path)


def test_an_archive_made_from_folders_has_its_mission_too(odfs: Path, tmp_path: Path) -> None:
    from daxa_xmm.layout import ArchiveLayout

    arch = Archive(ArchiveLayout(odfs, tmp_path / "out"), "22.1.0", obsids=["0100000002"], instruments=["PN"])
    mission = arch["xmm_pointed"]
    assert list(mission.filtered_obs_ids) == ["0100000002"] and mission.chosen_instruments == ["PN"] and mission.locked
    assert np.array_equal(mission.filtered_obs_info["ObsID"], ["0100000002"])
