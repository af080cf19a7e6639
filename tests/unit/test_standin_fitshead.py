"""The astropy-free header reader (daxa_xmm/odf/fitsread.py, which the stand-in and the core share) reads what astropy
reads: on every constituent of a synthetic ODF, on the real SAS files of xmm-samples, gzipped,
and with long strings; and it refuses what is not FITS."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.odf.fitsread import primary_header
from daxa_xmm.standin.synth import write_archive

_COMMENTARY = {"COMMENT", "HISTORY", ""}


def _astropy(path: Path) -> dict[str, object]:
    header = fits.getheader(path, 0)
    return {k: (None if isinstance(v, fits.card.Undefined) else v)
            for k, v in header.items() if k not in _COMMENTARY}


def test_every_constituent_of_a_synthetic_odf(tmp_path: Path) -> None:
    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    files = sorted((tmp_path / "archive" / obsid).rglob("*.FIT"))
    assert len(files) > 5
    for path in files:
        assert primary_header(path) == _astropy(path), path.name


def test_the_real_sas_files(xmm_samples: Path) -> None:
    files = [p for p in sorted(xmm_samples.rglob("*")) if p.is_file() and p.suffix.upper() in (".FIT", ".FITS", ".CIF", ".DS")]
    files = [p for p in files if p.read_bytes()[:9] == b"SIMPLE  ="]
    assert files, f"no FITS file under {xmm_samples}"
    for path in files:
        assert primary_header(path) == _astropy(path), path


def test_gzip_long_strings_quotes_and_numbers(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU()
    hdu.header["XPROC0"] = "cifbuild withccfpath=no analysisdate=now fullpath=yes " * 4 + "# (cifbuild-4.11)"
    hdu.header["QUOTED"] = "it's 'here'"
    hdu.header["PADDED"] = "  lead and trail  "
    hdu.header["FLAG"], hdu.header["NOPE"] = True, False
    hdu.header["NUM"], hdu.header["REAL"], hdu.header["BIG"] = -42, 2.5e-3, 1.0e300
    hdu.header["NOVALUE"] = None
    hdu.header["COMMENT"] = "a comment is not a keyword"
    plain = tmp_path / "h.fits"
    hdu.writeto(plain)
    packed = tmp_path / "h.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = _astropy(plain)
    assert len(str(expected["XPROC0"])) > 200  # astropy wrote it on CONTINUE cards
    assert primary_header(plain) == expected == primary_header(packed)


def test_what_is_not_fits_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.FIT"
    text.write_text("not a FITS file\n" * 300)
    with pytest.raises(ValueError, match="not a FITS file"):
        primary_header(text)
    cut = tmp_path / "cut.FIT"
    cut.write_bytes(("SIMPLE  =                    T".ljust(80) * 36).encode())  # one block, no END
    with pytest.raises(ValueError, match="no END card"):
        primary_header(cut)
