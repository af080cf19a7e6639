"""Builders of the setup and chain steps: cifbuild, odfingest, epchain, emchain, rgsproc, emanom."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import pytest

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.cifbuild import CifBuildConfig, cifbuild_calls
from daxa_xmm.steps.emanom import emanom_calls
from daxa_xmm.steps.emchain import emchain_calls
from daxa_xmm.steps.epchain import epchain_calls
from daxa_xmm.steps.odfingest import odfingest_calls
from daxa_xmm.steps.rgsproc import rgsproc_calls

OBS = "0123456789"
LAY = ArchiveLayout(Path("/raw"), Path("/out"))
SUM = Path("/out/0123456789/0001_0123456789_SCX00000SUM.SAS")
PN = Unit(obsid=OBS, inst="PN", exp_id="S003", ccds=tuple(range(1, 13)))
PNU = Unit(obsid=OBS, inst="PN", exp_id="U002", ccds=(1, 2, 4))
M1 = Unit(obsid=OBS, inst="M1", exp_id="S001")
R1 = Unit(obsid=OBS, inst="R1", exp_id="S004")
ENV = {"SAS_CCF": "/out/0123456789/ccf.cif", "SAS_ODF": str(SUM)}


@pytest.mark.parametrize(
    ("obs_date", "analysis", "expected_obs", "expected_an"),
    [
        (datetime(2004, 6, 17, 10, 38, 28), "now", "2004-06-17", "now"),
        (date(2001, 1, 1), "2020-05-15", "2001-01-01", "2020-05-15"),
        (date(2001, 1, 1), "2020-05-15T12:00:00", "2001-01-01", "2020-05-15T12:00:00"),
    ],
)
def test_cifbuild(obs_date, analysis, expected_obs, expected_an) -> None:
    (call,) = cifbuild_calls(LAY, OBS, obs_date, CifBuildConfig(analysis_date=analysis), timeout_s=60)
    assert call.argv == (
        "cifbuild",
        "calindexset=ccf.cif",
        "withobservationdate=yes",
        f"observationdate={expected_obs}",
        f"analysisdate={expected_an}",
        "fullpath=yes",
    )
    assert call.env == {"SAS_ODF": "/raw/0123456789"}  # no SAS_CCF: it does not exist yet
    assert call.cwd == Path("/out/0123456789/work/0123456789-cifbuild")
    assert call.outputs[0].name == "ccf.cif" and call.outputs[0].dest == Path("/out/0123456789/ccf.cif")
    assert call.timeout_s == 60


@pytest.mark.parametrize("bad", ["yesterday", "2020-13-45", "2020/01/01", ""])
def test_cifbuild_bad_analysis_date_names_field(bad: str) -> None:
    with pytest.raises(ConfigError, match="CifBuildConfig.analysis_date"):
        make_config(CifBuildConfig, analysis_date=bad)


def test_odfingest() -> None:
    (call,) = odfingest_calls(LAY, OBS, "0001")
    cwd = "/out/0123456789/work/0123456789-odfingest"
    assert call.argv == ("odfingest", "odfdir=/raw/0123456789", f"outdir={cwd}", "withodfdir=yes")
    assert call.env == {"SAS_CCF": "/out/0123456789/ccf.cif", "SAS_ODF": "/raw/0123456789"}
    assert call.outputs[0].name == "0001_0123456789_SCX00000SUM.SAS"
    assert call.outputs[0].dest == SUM


@pytest.mark.parametrize(
    ("version", "radmon"),
    [("21.0.0", True), ("21.0.3", True), ("22.1.0", False), ("20.0.0", False), ("21.1.0", False)],
)
def test_epchain_two_calls_and_radmonfix(version: str, radmon: bool) -> None:
    oot, normal = epchain_calls(LAY, PN, SUM, SasVersion(*map(int, version.split("."))), timeout_s=10)
    common = ["odfaccess=odf", "exposure=003", "schedule=S", "ccds=1,2,3,4,5,6,7,8,9,10,11,12"]
    tail = ["runradmonfix=N"] if radmon else []
    assert list(oot.argv) == ["epchain", *common, "withoutoftime=Y", "keepintermediate=raw", "runbackground=N", *tail]
    assert list(normal.argv) == [
        "epchain", *common, "runatthkgen=N", "runepframes=N", "runbadpixfind=N", "runbadpix=N", *tail
    ]
    assert oot.cwd == normal.cwd == Path("/out/0123456789/work/0123456789PNS003-epchain")
    assert oot.clean_cwd and not normal.clean_cwd
    assert oot.env == normal.env == ENV
    # the OOT run runs atthkgen and writes the attitude file, copied out because the
    # normal run (runatthkgen=N) reads it in the shared folder and writes none itself
    assert [(o.name, o.dest, o.copy) for o in oot.outputs] == [
        ("P0123456789PNS003OOEVLI0000.FIT", Path("/out/0123456789/events/P0123456789PNS003OOEVLI0000.FIT"), False),
        ("P0123456789OBX000ATTTSR0000.FIT", Path("/out/0123456789/events/P0123456789OBX000ATTTSR0000.FIT"), True),
    ]
    assert [(o.name, o.dest) for o in normal.outputs] == [
        ("P0123456789PNS003PIEVLI0000.FIT", Path("/out/0123456789/events/P0123456789PNS003PIEVLI0000.FIT")),
    ]
    assert (oot.reads_cwd_of, normal.reads_cwd_of) == (None, "epchain_oot")
    # the ODF is the summary, through SAS_ODF (no odf=, documented as a directory)
    assert not any(a.startswith("odf=") for a in (*oot.argv, *normal.argv))
    assert oot.env["SAS_ODF"] == str(SUM)


def test_epchain_unscheduled_and_ccd_subset() -> None:
    oot, _ = epchain_calls(LAY, PNU, SUM, SasVersion(22, 1, 0))
    assert "schedule=U" in oot.argv and "exposure=002" in oot.argv and "ccds=1,2,4" in oot.argv


@pytest.mark.parametrize(("unit", "words"), [(M1, "PN"), (Unit(obsid=OBS, inst="PN", exp_id="U003"), "imaging CCDs")])
def test_epchain_refuses(unit: Unit, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        epchain_calls(LAY, unit, SUM, SasVersion(22, 1, 0))


def test_emchain() -> None:
    (call,) = emchain_calls(LAY, M1, SUM)
    assert call.argv == (
        "emchain", "instruments=M1", "exposures=S001", "addtaglenoise=no", "makeflaregti=no"
    )
    assert not any(a.startswith("ccds=") for a in call.argv)
    assert call.env == ENV and call.env["SAS_ODF"] == str(SUM)
    assert call.outputs[0].name == "P0123456789M1S001MIEVLI0000.FIT"
    assert call.outputs[0].dest == Path("/out/0123456789/events/P0123456789M1S001MIEVLI0000.FIT")
    with pytest.raises(ConfigError):
        emchain_calls(LAY, PN, SUM)


def test_rgsproc_three_stages_share_a_cwd() -> None:
    calls = rgsproc_calls(LAY, R1, SUM)
    assert [c.argv for c in calls] == [
        ("rgsproc", f"entrystage={s}", f"finalstage={s}", "withinstexpids=true", "instexpids=R1S004")
        for s in ("1:events", "2:angles", "3:filter")
    ]
    assert [c.step for c in calls] == ["rgs_events", "rgs_angles", "cleaned_rgs_event_lists"]
    assert len({c.cwd for c in calls}) == 1
    assert [c.clean_cwd for c in calls] == [True, False, False]
    # rgsproc's algorithm page: events creates the merged list, angles modifies it in place
    # (no new file), filter creates EVENLI; DAXA 0.3.7 names the merged list 'merged0000'
    assert [(c.outputs[0].name, c.outputs[0].kind, c.outputs[0].dest) for c in calls] == [
        ("P0123456789R1S004merged0000.FIT", "create", None),
        ("P0123456789R1S004merged0000.FIT", "modify", None),
        ("P0123456789R1S004EVENLI0000.FIT", "create", Path("/out/0123456789/events/P0123456789R1S004EVENLI0000.FIT")),
    ]
    assert [c.reads_cwd_of for c in calls] == [None, "rgs_events", "rgs_angles"]
    assert all(c.env == ENV for c in calls)


def test_rgsproc_single_stage_and_errors() -> None:
    (call,) = rgsproc_calls(LAY, R1, SUM, ("angles",))
    assert "entrystage=2:angles" in call.argv and not call.clean_cwd
    with pytest.raises(ConfigError, match="unknown"):
        rgsproc_calls(LAY, R1, SUM, ("fluxing",))
    with pytest.raises(ConfigError):
        rgsproc_calls(LAY, M1, SUM)


def test_emanom_sas19_and_later() -> None:
    (call,) = emanom_calls(LAY, M1, SasVersion(19, 0, 0))
    assert call.argv == (
        "emanom", "eventfile=/out/0123456789/events/P0123456789M1S001MIEVLI0000.FIT", "keepcorner=no"
    )
    assert call.outputs[0].names == ("mos1S001-anom.log", "M1S001-anom.log")  # DAXA, ESAS cookbook
    assert call.outputs[0].dest == Path("/out/0123456789/cleaning/mos1S001-anom.log")
    # writekeys=yes (default) writes keywords into the input list: declared as modified
    assert (call.outputs[1].name, call.outputs[1].kind, call.outputs[1].dest) == (
        "/out/0123456789/events/P0123456789M1S001MIEVLI0000.FIT", "modify", None)


def test_emanom_before_sas19_warns_and_plans_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="daxa_xmm.steps.emanom"):
        assert emanom_calls(LAY, M1, SasVersion(18, 0, 0)) == []
    assert "SAS >= 19" in caplog.text
    with pytest.raises(ConfigError):
        emanom_calls(LAY, PN, SasVersion(22, 0, 0))


def test_cifbuild_records_the_analysis_date_it_used(tmp_path: Path) -> None:
    from astropy.io import fits

    from daxa_xmm.steps.cifbuild import analysis_date_used

    cif = tmp_path / "ccf.cif"
    table = fits.BinTableHDU.from_columns([fits.Column("SCOPE", "6A", array=["EPN"])], name="CALINDEX")
    table.header["ANALDATE"] = "2026-12-02T03:30:00"  # cifbuild records the dates it used (cifbuild docs)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(cif)
    assert analysis_date_used(cif, "now", 0.0) == "2026-12-02T03:30:00"
    assert analysis_date_used(cif, "2020-01-01", 0.0) == "2020-01-01"
    assert analysis_date_used(tmp_path / "missing.cif", "now", 86400.0 * 365) == "1971-01-01T00:00:00"
    (tmp_path / "cut.cif").write_bytes(cif.read_bytes()[:4000])  # cut short: the run's date, no error
    assert analysis_date_used(tmp_path / "cut.cif", "now", 0.0) == "1970-01-01T00:00:00"


def test_the_analysis_date_is_read_from_a_real_index(xmm_samples: Path) -> None:
    from daxa_xmm.steps.cifbuild import analysis_date_used

    # the sample index's CALINDEX header says ANALDATE = '2018-07-27T17:50:42' (read with astropy)
    assert analysis_date_used(xmm_samples / "ccf" / "0201903501_ccf.cif", "now", 0.0) == "2018-07-27T17:50:42"
