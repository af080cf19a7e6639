"""Fast mode of the SAS stand-in (benchmarks only): real names, placeholder contents, default unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.sas.quality import quality_problem
from daxa_xmm.standin import cli, fast
from daxa_xmm.standin.install import install_standin
from daxa_xmm.standin.testing import TINY_OBSID, write_tiny_odf
from daxa_xmm.steps.quality import QualityConfig


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("yes", True), ("TRUE", True), (" y ", True), ("", False), ("0", False), ("no", False), ("fast", False)],
)
def test_enabled_reads_the_variable(value: str, on: bool) -> None:
    assert fast.enabled({fast.ENV: value}) is on
    assert fast.enabled({}) is False


def test_placeholder_is_valid_fits_and_its_cards_read_back_without_astropy(tmp_path: Path) -> None:
    path = tmp_path / "p.fits"
    fast.placeholder_fits(path, {"INSTRUME": "EMOS1", "EXPIDSTR": "S001", "NOTE": "it's"})
    assert path.stat().st_size % 2880 == 0
    cards = fast.header_cards(path)
    assert cards["INSTRUME"] == "EMOS1" and cards["EXPIDSTR"] == "S001" and cards["NOTE"] == "it's"
    assert cards["TELESCOP"] == "XMM"  # as on every XMM product (xga reads it before images)
    with fits.open(path) as hdul:  # astropy agrees
        assert hdul[0].header["INSTRUME"] == "EMOS1" and hdul[0].header["NOTE"] == "it's"


@pytest.fixture
def odf_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny ODF ingested by the real stand-in odfingest; cwd is a fresh work folder."""
    odf = write_tiny_odf(tmp_path / "odf")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv(fast.ENV, raising=False)
    for var in ("DAXA_STANDIN_FAULTS", "DAXA_STANDIN_DURATIONS", "DAXA_STANDIN_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SAS_CCFPATH", install_standin(tmp_path / "sas")["SAS_CCFPATH"])
    monkeypatch.setenv(fast.ENV, "1")  # cifbuild runs for real even so: the flow reads its index
    assert cli.main("cifbuild", ["calindexset=ccf.cif", "withobservationdate=yes", "observationdate=2004-06-17"]) == 0
    monkeypatch.setenv("SAS_CCF", str(work / "ccf.cif"))
    # odfingest always runs for real, fast mode or not: the flow parses its summary
    assert cli.main("odfingest", [f"odfdir={odf}", f"outdir={work}", "withodfdir=yes"]) == 0
    monkeypatch.delenv(fast.ENV)
    summary = next(work.glob("*SUM.SAS"))
    monkeypatch.setenv("SAS_ODF", str(summary))
    return work


def test_fast_chain_writes_every_output_under_its_real_name(odf_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fast.ENV, "1")
    work = odf_env
    assert cli.main("epchain", ["exposure=3", "schedule=S", "withoutoftime=Y"]) == 0
    assert cli.main("epchain", ["exposure=3", "schedule=S"]) == 0
    pn = work / f"P{TINY_OBSID}PNS003PIEVLI0000.FIT"
    assert (work / f"P{TINY_OBSID}PNS003OOEVLI0000.FIT").is_file() and pn.is_file()
    assert (work / f"P{TINY_OBSID}OBX000ATTTSR0000.FIT").is_file()
    assert fast.header_cards(pn)["INSTRUME"] == "EPN"
    assert cli.main("emchain", ["instruments=M1", "exposures=S001"]) == 0
    mos = work / f"P{TINY_OBSID}M1S001MIEVLI0000.FIT"
    for events in (pn, mos):  # the exposure's dates, from the summary, as real lists have them
        cards = fast.header_cards(events)
        assert cards["DATE-OBS"][:2] in ("19", "20") and cards["DATE-END"] > cards["DATE-OBS"]
    assert cli.main("emanom", [f"eventfile={mos}"]) == 0
    assert "Status: G" in (work / "mos1S001-anom.log").read_text()
    with fits.open(mos) as hdul:  # writekeys (default yes): its keywords in its input, once each
        header = hdul[0].header
        assert [header[f"ANOMFL{c}"] for c in range(2, 8)] == ["G"] * 6 and header["INSTRUME"] == "EMOS1"
        assert [c.keyword for c in header.cards].count("CREATOR") == 1
    assert cli.main("espfilt", [f"eventfile={pn}", "withoot=yes"]) == 0
    assert {p.name for p in work.glob("pnS003-*")} == {"pnS003-gti.fits", "pnS003-allevc.fits", "pnS003-hist.qdp", "pnS003-allevcoot.fits"}
    assert cli.main("evselect", [f"table={pn}:EVENTS", "filteredset=clean.fits", "withfilteredset=yes", "expression=PI>200"]) == 0
    assert cli.main("merge", ["set1=clean.fits", f"set2={pn}", "outset=merged.fits"]) == 0
    assert cli.main("evselect", ["table=merged.fits", "imageset=img.fits", "withimageset=yes"]) == 0
    assert cli.main("eexpmap", ["imageset=img.fits", "attitudeset=a", "eventset=merged.fits", "expimageset=exp.fits"]) == 0
    assert fast.header_cards(work / "exp.fits")["EXPIDSTR"] == "S003"
    assert cli.main("rgsproc", ["withinstexpids=true", "instexpids=R1S004", "entrystage=1:events", "finalstage=3:filter"]) == 0
    assert (work / f"P{TINY_OBSID}R1S004merged0000.FIT").is_file()  # stage 1 writes it (rgsproc page; DAXA name)
    with fits.open(pn) as hdul:  # a placeholder: one event, one second of good time
        assert len(hdul["EVENTS"].data) == 1
    # which passes the data-quality checks of every product it stands for (daxa_xmm.sas.quality)
    judge = QualityConfig()
    for path, quality in ((work / "pnS003-gti.fits", judge.flare_gti()), (work / "clean.fits", judge.cleaned_events()),
                          (work / "img.fits", judge.image()), (work / "exp.fits", judge.exposure_map())):
        assert quality_problem(path, quality) is None, path.name


def test_fast_mode_still_fails_like_sas(odf_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(fast.ENV, "1")
    assert cli.main("merge", ["set1=missing.fits", "set2=b.fits", "outset=m.fits"]) == 1
    assert "** merge: error (datasetCouldNotBeRead)" in capsys.readouterr().err
    assert cli.main("epchain", ["exposure=3", "schedule=S", "bogus=1"]) == 1
    assert "UnknownParameter" in capsys.readouterr().err


def test_default_mode_is_unchanged_real_event_lists(odf_env: Path) -> None:
    assert cli.main("epchain", ["exposure=3", "schedule=S"]) == 0
    with fits.open(odf_env / f"P{TINY_OBSID}PNS003PIEVLI0000.FIT") as hdul:
        assert "EVENTS" in hdul and len(hdul["EVENTS"].data) > 0
