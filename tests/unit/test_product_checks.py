"""A product is checked for what the next step reads before it is recorded ok (issue 12.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.sas.product_checks import check_product, looks_intact


def _events(path: Path, columns: tuple[str, ...] = ("TIME", "PI")) -> Path:
    cols = [fits.Column(c, "D", array=np.arange(3.0)) for c in columns]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)
    return path


@pytest.mark.parametrize(
    ("make", "check", "problem"),
    [
        (lambda p: _events(p), "events", None),
        (lambda p: _events(p, ("TIME",)), "events", "columns TIME, PI"),
        (lambda p: _events(p), "attitude", "no ATTHK extension"),
        (lambda p: _events(p, ("START", "STOP")), "gti", None),
        (lambda p: _events(p), "gti", "START, STOP"),
        (lambda p: fits.PrimaryHDU(np.zeros((4, 4))).writeto(p) or p, "image", None),
        (lambda p: fits.PrimaryHDU().writeto(p) or p, "image", "no 2-d image"),
        (lambda p: p.write_bytes(b"SIMPLE  = T" * 10) and p, "events", "not a readable FITS file"),
    ],
)
def test_check_product(tmp_path: Path, make, check: str, problem: str | None) -> None:
    path = make(tmp_path / "x.fits")
    got = check_product(path, check)
    assert (got is None) if problem is None else (problem in got), got


def test_looks_intact_catches_a_truncated_fits_file_and_summary(tmp_path: Path, xmm_samples: Path) -> None:
    evt = _events(tmp_path / "e.fits")
    assert looks_intact(evt, "events")
    evt.write_bytes(evt.read_bytes()[:4000])
    assert not looks_intact(evt, "events") and not looks_intact(tmp_path / "gone.fits", "events")
    summary = tmp_path / "0828_0201903501_SCX00000SUM.SAS"
    text = (xmm_samples / "odf_summaries" / summary.name).read_text()
    summary.write_text(text)
    assert looks_intact(summary, "summary")
    summary.write_text(text[: len(text) // 2])
    assert not looks_intact(summary, "summary")


def test_data_cut_short_at_a_block_boundary_is_caught(tmp_path: Path) -> None:
    """A writer killed between two 2880-byte blocks leaves a file looks_intact accepts; the
    check after the call still finds the missing data."""
    evt = tmp_path / "e.fits"
    cols = [fits.Column(c, "D", array=np.arange(2000.0)) for c in ("TIME", "PI")]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(evt)
    evt.write_bytes(evt.read_bytes()[: 4 * 2880])
    assert looks_intact(evt, "events")
    problem = check_product(evt, "events")
    assert problem is not None and "cut short" in problem, problem
