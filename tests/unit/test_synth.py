"""Synthetic ODF archives: real names, the promised headers, determinism, every mix."""

from __future__ import annotations

import gzip

import pytest
from astropy.io import fits

from daxa_xmm.standin.synth import MIXES, NAME_RE, ObsSpec, main, write_archive, write_odf


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_demo_archive_names_and_headers(tmp_path) -> None:
    obsids = write_archive(tmp_path, 3, mix="demo", seed=3)
    assert obsids == ["0100000001", "0100000002", "0100000003"]
    for obsid in obsids:
        names = _files(tmp_path / obsid)
        assert names and all(NAME_RE.match(n) for n in names), names
        assert all(f"_{obsid}_" in n for n in names)
        assert sum(n.endswith("SUM.ASC") for n in names) == 1
        assert any(n.endswith("SCX00000ATS.FIT") for n in names) and any(n.endswith("SCX00000TCS.FIT") for n in names)
    multi = _files(tmp_path / obsids[1])
    assert any("_PNS00300AUX" in n for n in multi) and any("_PNS00400AUX" in n for n in multi)
    assert sum("_M1S001" in n and n.endswith("IME.FIT") for n in multi) == 6
    assert not any("_M1S00160IME" in n for n in multi)
    aux = next(tmp_path.joinpath(obsids[1]).glob("*_PNU00200AUX.FIT"))
    h = fits.getheader(aux)
    assert h["INSTRUME"] == "EPN" and h["EXPIDSTR"] == "U002" and h["SCHEDULD"] is False
    assert h["EXP_ID"] == f"{obsids[1]}PNU002" and h["EXPTYPE"] == "SCIENCE" and h["FILTER"] == "Thin1"
    assert h["DATE-OBS"] < h["DATE-END"]
    modes = {fits.getheader(p)["DATAMODE"] for p in tmp_path.joinpath(obsids[1]).glob("*_PNU*[0-9][0-9][A-Z][A-Z][A-Z].FIT")
             if not p.name.endswith("AUX.FIT")}
    assert {"Imaging", "Diagnostic", "Offset"} <= modes
    timing = tmp_path / obsids[2]
    tie = next(timing.glob("*_PNS003*TIE.FIT"))
    assert fits.getheader(tie)["DATAMODE"] == "Timing" and fits.getheader(tie)["CCDID"] == 4
    assert fits.getheader(next(timing.glob("*_M2S00200AUX.FIT")))["FILTER"] == "CalClosed"
    rgs = fits.getheader(next(timing.glob("*_R1S00400AUX.FIT")))
    assert rgs["INSTRUME"] == "RGS1" and "FILTER" not in rgs


def test_sum_asc_observation_record(tmp_path) -> None:
    spec = ObsSpec(exposures=MIXES["standard"])
    folder = write_odf(tmp_path, "0201903501", spec)
    text = next(folder.glob("*SUM.ASC")).read_text()
    assert "OBSERVATION\n0201903501 / Observation Identifier\n0828 / Revolution Identifier\n" in text
    assert "2004-06-17T10:38:28.000 / Observation Start Time" in text
    assert "2004-06-17T14:38:28.000 / Observation End Time" in text
    assert "CONFIGURATION\n2\nODF_VERSION = 003" in text and "PRIME_INSTR = E3 / Prime Instrument" in text
    summary = pytest.importorskip("daxa_xmm.odf.summary")
    rec = summary.read_observation_record(next(folder.glob("*SUM.ASC")))
    assert rec.obsid == "0201903501" and rec.revolution == "0828"
    assert (rec.end - rec.start).total_seconds() == 4 * 3600


@pytest.mark.parametrize("mix", ["demo", "random", *MIXES])
def test_every_mix_is_deterministic(tmp_path, mix: str) -> None:
    a = write_archive(tmp_path / "a", 4, mix=mix, seed=7)
    b = write_archive(tmp_path / "b", 4, mix=mix, seed=7)
    assert a == b
    for obsid in a:
        names = _files(tmp_path / "a" / obsid)
        assert names == _files(tmp_path / "b" / obsid)
        for n in names:
            assert (tmp_path / "a" / obsid / n).read_bytes() == (tmp_path / "b" / obsid / n).read_bytes()
            assert (tmp_path / "a" / obsid / n).stat().st_size <= 5760


def test_seed_changes_random_archive(tmp_path) -> None:
    write_archive(tmp_path / "a", 5, mix="random", seed=1)
    write_archive(tmp_path / "b", 5, mix="random", seed=2)
    sums = [sorted((tmp_path / k).glob("*/*SUM.ASC")) for k in "ab"]
    assert [p.read_text() for p in sums[0]] != [p.read_text() for p in sums[1]]


def test_gzip_option(tmp_path) -> None:
    (obsid,) = write_archive(tmp_path, 1, mix="om_only", gzip=True)
    names = _files(tmp_path / obsid)
    assert all(NAME_RE.match(n) for n in names)
    fit = [n for n in names if ".FIT" in n]
    assert fit and all(n.endswith(".FIT.gz") for n in fit)
    assert any(n.endswith("SUM.ASC") for n in names)
    raw = gzip.decompress((tmp_path / obsid / next(n for n in fit if "OMS00600IMI" in n)).read_bytes())
    assert raw.startswith(b"SIMPLE  =") and b"DATAMODE= 'Imaging '" in raw


def test_bad_inputs(tmp_path) -> None:
    with pytest.raises(ValueError):
        write_archive(tmp_path, 1, mix="nope")
    with pytest.raises(ValueError):
        write_odf(tmp_path, "123", ObsSpec())


def test_cli(tmp_path, capsys) -> None:
    assert main([str(tmp_path), "-n", "2", "--mix", "timing", "--start-obsid", "500"]) == 0
    assert capsys.readouterr().out.split() == ["0000000500", "0000000501"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0000000500", "0000000501"]
