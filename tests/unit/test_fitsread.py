"""daxa_xmm.odf.fitsread reads what astropy reads, in the real SAS files of xmm-samples and in
the stand-in's calibration index."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.odf.fitsread import column_chunks, find, read_hdus, table_columns
from daxa_xmm.sas.calindex import calindex_dates, listed_ccfs
from daxa_xmm.sas.product_checks import check_product

REAL = ["events/0201903501_mos1_S001_clean_evts.fits", "events/0201903501_mos2_S002_clean_evts.fits",
        "images/0201903501_mos1_exp1-0.50-2.00keVimg.fits", "ccf/0201903501_ccf.cif"]


@pytest.mark.parametrize("name", REAL)
def test_hdus_and_columns_as_astropy_sees_them(xmm_samples: Path, name: str) -> None:
    path = xmm_samples / name
    with fits.open(path) as hdul:
        expected = [(h.header.get("EXTNAME"), h.header.get("NAXIS"),
                     tuple(h.columns.names) if hasattr(h, "columns") else ()) for h in hdul]
    got = [(h.name, int(h.cards["NAXIS"]), tuple(v for k, v in h.cards.items() if k.startswith("TTYPE")))
           for h in read_hdus(path)]
    assert got == expected
    # and the product checks agree with what each file is
    assert (check_product(path, "events") is None) == name.startswith("events/")
    assert (check_product(path, "image") is None) == name.startswith("images/")
    assert (check_product(path, "calindex") is None) == (name.startswith("ccf/") or name.startswith("events/"))


@pytest.mark.parametrize("name", ["ccf/0201903501_ccf.cif", "events/0201903501_mos1_S001_clean_evts.fits"])
def test_table_values_as_astropy_reads_them(xmm_samples: Path, name: str) -> None:
    path = xmm_samples / name
    hdu = find(read_hdus(path), "CALINDEX")
    names = ("SCOPE", "TYPEID", "ISSUE", "FNAME", "FSIZE")
    got = table_columns(path, hdu, names)
    with fits.open(path) as hdul:
        data = hdul["CALINDEX"].data
        for n in names:
            want = [v.rstrip() if isinstance(v, str) else v for v in data[n].tolist()]
            assert got[n] == want, n
    assert len(got["ISSUE"]) > 50


def test_scaled_and_vector_columns_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.fits"
    cols = [fits.Column("A", "3A", array=np.array(["ab", "c", ""])),
            fits.Column("V", "2E", array=np.arange(6.0).reshape(3, 2)),
            fits.Column("S", "I", array=np.array([1, 2, 3]))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="T")]).writeto(path)
    fits.setval(path, "TSCAL3", value=0.5, ext=1)
    fits.setval(path, "TZERO3", value=10, ext=1)
    hdu = find(read_hdus(path), "T")
    got = table_columns(path, hdu, ("A", "V", "S"))
    assert got["A"] == ["ab", "c", ""] and got["V"] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert got["S"] == [10.5, 11.0, 11.5] == fits.getdata(path, "T")["S"].tolist()
    with pytest.raises(ValueError, match="no column NOPE"):
        table_columns(path, hdu, ("NOPE",))
    with pytest.raises(KeyError, match="no CALINDEX"):
        find(read_hdus(path), "CALINDEX")


def test_a_column_read_in_chunks_is_the_column_astropy_reads(xmm_samples: Path, tmp_path: Path) -> None:
    # the report counts events per band from PI, read chunk by chunk (daxa_xmm.report.science)
    path = xmm_samples / "events/0201903501_mos1_S001_clean_evts.fits"
    hdu = find(read_hdus(path), "EVENTS")
    chunks = list(column_chunks(path, hdu, "PI", rows_per_chunk=10_000))
    assert [len(c) for c in chunks] == [10_000, 10_000, 10_000, 1607]
    with fits.open(path) as hdul:
        assert np.array_equal(np.concatenate(chunks), hdul["EVENTS"].data["PI"])
    # scaled (an unsigned column is TZERO-shifted), empty, and refused columns
    small = tmp_path / "u.fits"
    cols = [fits.Column("U", "J", bzero=2**31, array=np.array([0, 7, 2**32 - 1], dtype=np.uint32)),
            fits.Column("T", "2A", array=np.array(["a", "b", "c"]))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="T")]).writeto(small)
    table = find(read_hdus(small), "T")
    assert np.concatenate(list(column_chunks(small, table, "U", rows_per_chunk=2))).tolist() == [0, 7, 2**32 - 1]
    with pytest.raises(ValueError, match="not numeric"):
        list(column_chunks(small, table, "T"))
    with pytest.raises(ValueError, match="no column PI"):
        list(column_chunks(small, table, "PI"))
    empty = tmp_path / "e.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("PI", "I", array=np.array([], np.int16))],
                                                                   name="EVENTS")]).writeto(empty)
    assert list(column_chunks(empty, find(read_hdus(empty), "EVENTS"), "PI")) == []


def test_the_standins_calibration_index_is_read_as_astropy_reads_it(tmp_path: Path, standin) -> None:
    import subprocess

    from daxa_xmm.standin.synth import write_archive

    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    cif = tmp_path / "ccf.cif"
    subprocess.run(["cifbuild", "calindexset=ccf.cif", "withobservationdate=yes", "observationdate=2005-06-01",
                    "analysisdate=now", "fullpath=yes"], cwd=tmp_path,
                   env={**os.environ, "SAS_ODF": str(tmp_path / "archive" / obsid)}, check=True, capture_output=True)
    with fits.open(cif) as hdul:
        data = hdul["CALINDEX"].data
        want = [(s.strip().upper(), t.strip().upper(), int(i), f.strip())
                for s, t, i, f in zip(data["SCOPE"], data["TYPEID"], data["ISSUE"], data["FNAME"], strict=True)]
        hdr = hdul["CALINDEX"].header
    assert listed_ccfs(cif) == want and want
    assert [d is not None for d in calindex_dates(cif)] == ["OBSVDATE" in hdr, "ANALDATE" in hdr]
