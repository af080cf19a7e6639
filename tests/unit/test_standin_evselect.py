"""Stand-in evselect: the real SAS image reproduced pixel for pixel, plus synthetic cases."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.standin import cli
from daxa_xmm.standin.common import SasExit, TaskContext
from daxa_xmm.standin.evselect import AxisGrid, axis_grid, bin_image, run, split_table_spec


def _ctx(cwd: Path) -> TaskContext:
    return TaskContext(task="evselect", argv=[], cwd=cwd, env={})


def _events(path: Path, n: int = 200, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    cols = [
        fits.Column(name="TIME", format="D", array=np.linspace(100.0, 300.0, n)),
        fits.Column(name="X", format="J", array=rng.integers(1, 101, n)),
        fits.Column(name="Y", format="J", array=rng.integers(1, 101, n)),
        fits.Column(name="PI", format="I", array=rng.integers(0, 3000, n)),
        fits.Column(name="FLAG", format="J", array=rng.choice([0, 0, 0, 0x2, 0x10000], n)),
        fits.Column(name="PATTERN", format="I", array=rng.integers(0, 30, n)),
        fits.Column(name="CCDNR", format="B", array=np.ones(n, dtype=np.uint8)),
    ]
    ev = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    h = ev.header
    h["XMMEA_EM"] = "(FLAG & 0x766ba000) == 0"
    h["TLMIN2"], h["TLMAX2"], h["TLMIN3"], h["TLMAX3"] = 1, 100, 1, 100
    for i, (typ, dlt) in ((2, ("RA---TAN", -1e-3)), (3, ("DEC--TAN", 1e-3))):
        h[f"TCTYP{i}"], h[f"TCRPX{i}"], h[f"TCRVL{i}"], h[f"TCDLT{i}"], h[f"TCUNI{i}"] = typ, 50, 10.0, dlt, "deg"
    h["ONTIME01"], h["ONTIME"], h["LIVETI01"], h["LIVETIME"] = 200.0, 200.0, 190.0, 190.0
    gti = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", array=[100.0]), fits.Column(name="STOP", format="D", array=[300.0])],
        name="STDGTI01",
    )
    primary = fits.PrimaryHDU()
    primary.header["OBS_ID"] = "0100000001"
    fits.HDUList([primary, ev, gti]).writeto(path)
    return path


def test_reproduces_real_sas_image_pixel_for_pixel(xmm_samples, tmp_path) -> None:
    ref_path = xmm_samples / "images" / "0201903501_mos1_exp1-0.50-2.00keVimg.fits"
    events = xmm_samples / "events" / "0201903501_mos1_S001_clean_evts.fits"
    with fits.open(ref_path, memmap=False) as ref:
        command = ref[0].header["XPROC0"].split(" # ")[0]
        ref_data = ref[0].data.copy()
        ref_header = ref[0].header.copy()
    argv = [a for a in shlex.split(command)[1:] if not a.startswith(("table=", "imageset="))]
    argv += [f"table={events}", "imageset=img.fits"]
    args = {k: v for k, _, v in (a.partition("=") for a in argv)}
    assert run(args, _ctx(tmp_path)) == 0
    with fits.open(tmp_path / "img.fits", memmap=False) as mine:
        data, header = mine[0].data, mine[0].header
        assert data.shape == ref_data.shape and data.dtype == ref_data.dtype
        assert np.array_equal(data, ref_data)
        for key in ("CTYPE1", "CTYPE2", "CTYPE1L", "CRPIX1L", "WCSNAMEL", "SLCTEXPR"):
            assert header[key] == ref_header[key], key
        for key in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CDELT1", "CDELT2", "CRVAL1L", "CDELT2L",
                    "LTV1", "LTV2", "LTM1_1", "LTM2_2", "EXPOSURE", "REFXCRVL"):
            assert header[key] == pytest.approx(ref_header[key], rel=1e-12), key
        assert [h.name for h in mine[1:]] == [f"GTI00{k}06" for k in range(7)]


def test_grid_convention() -> None:
    grid = axis_grid("binSize", 3649, 48106, 87, 0)
    assert grid.n == 512 and grid.center1 == 3692
    assert grid.index(np.array([3649, 3735, 3736, 3648])).tolist() == [0, 0, 1, -1]
    assert axis_grid("imageSize", 1, 640, 1, 320).binsize == 2
    assert axis_grid("binSize", 1, 10, 1, 0).n == 10


def test_bin_image_counts_and_drops_outside() -> None:
    g = AxisGrid(1, 2, 3)  # pixels hold 1-2, 3-4, 5-6
    img = bin_image(np.array([1, 2, 3, 6, 7, 0]), np.array([1, 1, 5, 6, 1, 1]), g, g)
    assert img.shape == (3, 3) and img.sum() == 4
    assert img[0, 0] == 2 and img[2, 1] == 1 and img[2, 2] == 1


def test_filtered_set_rows_exposure_and_headers(tmp_path) -> None:
    _events(tmp_path / "ev.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", array=[150.0]), fits.Column(name="STOP", format="D", array=[200.0])],
        name="GTI")]).writeto(tmp_path / "gti.fits")
    expr = "#XMMEA_EM && PATTERN <= 12 && PI in [500:2000] && gti(gti.fits,TIME)"
    args = {"table": "ev.fits:EVENTS", "withfilteredset": "yes", "filteredset": "out.fits", "expression": expr}
    assert run(args, _ctx(tmp_path)) == 0
    with fits.open(tmp_path / "ev.fits") as src, fits.open(tmp_path / "out.fits") as out:
        d = src["EVENTS"].data
        want = ((d["FLAG"] & 0x766BA000) == 0) & (d["PATTERN"] <= 12) & (d["PI"] >= 500) & (d["PI"] <= 2000) \
            & (d["TIME"] >= 150) & (d["TIME"] < 200)
        assert np.array_equal(out["EVENTS"].data["TIME"], d["TIME"][want])
        assert [h.name for h in out] == [h.name for h in src]
        h = out["EVENTS"].header
        assert h["SLCTEXPR"].startswith("(FLAG & 0x766ba000) == 0 && PATTERN")
        assert h["ONTIME01"] == pytest.approx(50.0) and h["ONTIME"] == pytest.approx(50.0)
        assert h["LIVETI01"] == pytest.approx(190.0 * 50 / 200)
        assert out["STDGTI01"].data["START"].tolist() == [150.0]
        assert out[0].header["XPROC0"].startswith("evselect table=ev.fits:EVENTS")


def test_destruct_no_keeps_rows_and_flags(tmp_path) -> None:
    _events(tmp_path / "ev.fits")
    args = {"table": "ev.fits", "withfilteredset": "yes", "filteredset": "o.fits", "expression": "PI < 1000",
            "destruct": "no"}
    run(args, _ctx(tmp_path))
    with fits.open(tmp_path / "o.fits") as out:
        d = out["EVENTS"].data
        assert len(d) == 200 and np.array_equal(d["EVFLAG"] == 1, d["PI"] < 1000)


def test_image_default_ranges_from_legal_limits_and_wcs(tmp_path) -> None:
    _events(tmp_path / "ev.fits")
    args = {"table": "ev.fits", "withimageset": "yes", "imageset": "i.fits", "xcolumn": "X", "ycolumn": "Y",
            "imagebinning": "binSize", "ximagebinsize": "10", "yimagebinsize": "10", "expression": "PI >= 0"}
    run(args, _ctx(tmp_path))
    with fits.open(tmp_path / "i.fits") as img, fits.open(tmp_path / "ev.fits") as src:
        assert img[0].data.shape == (10, 10) and img[0].data.sum() == 200
        d = src["EVENTS"].data
        expected, _, _ = np.histogram2d(d["Y"], d["X"], bins=[np.arange(0.5, 101, 10)] * 2)
        assert np.array_equal(img[0].data, expected)
        h = img[0].header
        assert h["CRVAL1L"] == 5.5 and h["CRPIX1"] == pytest.approx((50 - 5.5) / 10 + 1)
        assert h["CDELT1"] == pytest.approx(-1e-2) and h["OBS_ID"] == "0100000001"


def test_image_without_wcs_warns(tmp_path, capsys) -> None:
    _events(tmp_path / "ev.fits")
    run({"table": "ev.fits", "withimageset": "yes", "xcolumn": "PI", "ycolumn": "PATTERN",
         "withimagedatatype": "yes", "imagedatatype": "Int32"}, _ctx(tmp_path))
    assert "** evselect: warning (NoWCS), No WCS information available for image column PI." in capsys.readouterr().err
    assert fits.getdata(tmp_path / "image.fits").dtype.kind == "i"


def test_expression_error_is_sas_error(tmp_path) -> None:
    _events(tmp_path / "ev.fits")
    with pytest.raises(SasExit) as info:
        run({"table": "ev.fits", "expression": "PI in [500:", "withfilteredset": "yes"}, _ctx(tmp_path))
    assert info.value.name == "SyntaxError"
    with pytest.raises(SasExit) as info:
        run({"table": "ev.fits", "expression": "ENERGY > 3"}, _ctx(tmp_path))
    assert info.value.name == "UnknownColumn"


def test_cli_prints_sas_error_and_exits_nonzero(tmp_path, monkeypatch, capsys) -> None:
    _events(tmp_path / "ev.fits")
    monkeypatch.chdir(tmp_path)
    assert cli.main("evselect", ["table=ev.fits", "expression=PI &&& 3"]) != 0
    assert "** evselect: error (SyntaxError)," in capsys.readouterr().err
    assert cli.main("evselect", ["table=ev.fits", "nosuchparam=1"]) != 0
    assert "** evselect: error (UnknownParameter)" in capsys.readouterr().err
    assert cli.main("evselect", ["table=missing.fits"]) != 0


def test_split_table_spec(tmp_path) -> None:
    assert split_table_spec("a.fits:EVENTS") == ("a.fits", "EVENTS")
    assert split_table_spec("a.fits[STDGTI01]") == ("a.fits", "STDGTI01")
    assert split_table_spec("a.fits") == ("a.fits", None)
