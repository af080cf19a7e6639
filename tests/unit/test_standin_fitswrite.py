"""The stand-in's astropy-free FITS writer, read back with astropy (the reference) and with
the stand-in's own header reader; cifbuild's CALINDEX against the real sample index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.odf.fitsread import primary_header
from daxa_xmm.sas.calindex import calindex_dates, listed_ccfs
from daxa_xmm.standin.fitswrite import Column, bintable_hdu, card, primary_hdu
from tests.unit.test_standin_tasks import Sas

LONG = "cifbuild calindexset=ccf.cif withobservationdate=yes observationdate=2004-06-17 it's long # (cifbuild-4.11)"


def _write(path: Path) -> None:
    columns = [
        Column("NAME", "8A", ["EPN", "O'Brien", ""], "text"),
        Column("SHORT", "I", [1, -2, 32767]),
        Column("INT", "J", [0, -70000, 2**31 - 1], "byte"),
        Column("LONG", "K", [2**40, -1, 0]),
        Column("REAL", "E", [0.5, -1.25, 3.0]),
        Column("DOUBLE", "D", [1e-300, -2.5, 123456.789]),
    ]
    primary = primary_hdu([*card("XPROC0", LONG), *card("FLAG", False), *card("N", 12, "a count"),
                           *card("X", 0.1), *card("QUOTE", "a 'b'")])
    path.write_bytes(primary + bintable_hdu("TABLE", columns, card("OBSVDATE", "2004-06-17T00:00:00")))


def test_a_table_of_every_format_reads_back_with_astropy(tmp_path: Path) -> None:
    path = tmp_path / "t.fits"
    _write(path)
    with fits.open(path) as hdul:
        hdul.verify("exception")
        head = hdul[0].header
        assert (head["XPROC0"], head["FLAG"], head["N"], head["X"], head["QUOTE"]) == (LONG, False, 12, 0.1, "a 'b'")
        assert head.comments["N"] == "a count"
        table = hdul["TABLE"]
        assert table.header["OBSVDATE"] == "2004-06-17T00:00:00"
        assert [(c.name, c.format, c.unit) for c in table.columns] == [
            ("NAME", "8A", "text"), ("SHORT", "I", None), ("INT", "J", "byte"), ("LONG", "K", None),
            ("REAL", "E", None), ("DOUBLE", "D", None)]
        data = table.data
        assert list(data["NAME"]) == ["EPN", "O'Brien", ""]
        assert list(data["SHORT"]) == [1, -2, 32767] and list(data["INT"]) == [0, -70000, 2**31 - 1]
        assert list(data["LONG"]) == [2**40, -1, 0]
        assert np.allclose(data["REAL"], [0.5, -1.25, 3.0]) and list(data["DOUBLE"]) == [1e-300, -2.5, 123456.789]


def test_the_header_reader_reads_what_the_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "t.fits"
    _write(path)
    head = primary_header(path)
    assert (head["XPROC0"], head["FLAG"], head["N"], head["QUOTE"]) == (LONG, False, 12, "a 'b'")


def test_the_writer_refuses_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="longer than 8"):
        card("TOOLONGKEY", 1)
    with pytest.raises(ValueError, match="NAME"):
        bintable_hdu("T", [Column("NAME", "3A", ["abcd"])])
    with pytest.raises(ValueError, match="different lengths"):
        bintable_hdu("T", [Column("A", "I", [1]), Column("B", "I", [1, 2])])
    with pytest.raises(ValueError, match="TFORM"):
        bintable_hdu("T", [Column("A", "X", [1])])


def test_cifbuild_writes_the_real_index_layout_that_the_pipeline_reads(tmp_path: Path, xmm_samples: Path) -> None:
    sas = Sas(tmp_path)
    r = sas.run("cifbuild", "calindexset=ccf.cif", "withobservationdate=yes", "observationdate=2004-06-17T10:38:28",
                "analysisdate=now")
    assert r.returncode == 0, r.stderr
    cif = sas.work / "ccf.cif"
    with fits.open(cif) as ours, fits.open(xmm_samples / "ccf" / "0201903501_ccf.cif") as real:
        ours.verify("exception")
        layout = [[(c.name, c.format, c.unit) for c in h["CALINDEX"].columns] for h in (ours, real)]
        assert layout[0] == layout[1]
        assert ours["CALINDEX"].header["CATEGORY"] == real["CALINDEX"].header["CATEGORY"] == "XMMCCF"
        assert ours[0].header["XPROC0"].startswith("cifbuild calindexset=ccf.cif withobservationdate=yes")
    rows = listed_ccfs(cif)
    assert ("EPN", "QUANTUMEF", 19, "EPN_QUANTUMEF_0019.CCF") in rows and len(rows) == 14
    obsdate, _ = calindex_dates(cif)
    assert obsdate is not None and obsdate.isoformat() == "2004-06-17T10:38:28"
