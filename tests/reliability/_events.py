"""A minimal EPIC event list for tests that hand evselect a real table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def write_events(path: Path, n: int = 50) -> Path:
    rng = np.random.default_rng(0)
    cols = [
        fits.Column("TIME", "D", array=np.sort(rng.uniform(0, 1000, n))),
        fits.Column("PI", "J", array=rng.integers(100, 12000, n)),
        fits.Column("PATTERN", "J", array=rng.integers(0, 12, n)),
        fits.Column("FLAG", "J", array=np.zeros(n, dtype=int)),
        fits.Column("CCDNR", "J", array=rng.integers(1, 12, n)),
        fits.Column("X", "E", array=rng.uniform(0, 50000, n)),
        fits.Column("Y", "E", array=rng.uniform(0, 50000, n)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)
    return path
