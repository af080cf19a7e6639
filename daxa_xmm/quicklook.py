"""Quick-look PNGs for the report: espfilt light curves with their GTIs, and band images.

A first look that tells an astronomer whether the flare filtering and the images are sane
without opening a FITS viewer. Drawn with matplotlib's Agg backend (no display needed);
a product that cannot be read is skipped with a logged warning, never an exception.
"""

from __future__ import annotations

__all__ = ["lightcurve_png", "image_png", "observation_pictures"]

import logging
from pathlib import Path

import numpy as np

from daxa_xmm.layout import ArchiveLayout

log = logging.getLogger(__name__)


def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, out: Path) -> Path:  # type: ignore[no-untyped-def]
    """Write the figure beside ``out`` and rename it into place."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


def _gtis(path: Path) -> np.ndarray:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul[1:]:
            cols = getattr(hdu, "columns", None)
            if cols is not None and "START" in cols.names and "STOP" in cols.names:
                return np.column_stack([np.asarray(hdu.data["START"], float), np.asarray(hdu.data["STOP"], float)])
    return np.empty((0, 2))


def lightcurve_png(events: Path, gti: Path, out: Path, title: str, bin_s: float = 100.0) -> Path | None:
    """Count rate of ``events`` in ``bin_s`` bins, with the GTIs of ``gti`` shaded."""
    from astropy.io import fits

    try:
        with fits.open(events, memmap=False) as hdul:
            t = np.asarray(hdul["EVENTS"].data["TIME"], float)
        gtis = _gtis(gti)
    except Exception as exc:  # unreadable product: report without picture
        log.warning("light curve %s: %s", events, exc)
        return None
    if t.size == 0:
        return None
    edges = np.arange(t.min(), t.max() + bin_s, bin_s)
    counts, _ = np.histogram(t, edges)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.6), dpi=80)
    t0 = edges[0]
    ax.step((edges[:-1] - t0) / 1e3, counts / bin_s, where="post", lw=0.8, color="k")
    for start, stop in gtis:
        ax.axvspan((start - t0) / 1e3, (stop - t0) / 1e3, color="tab:green", alpha=0.2, lw=0)
    ax.set_xlabel("time since start (ks)")
    ax.set_ylabel("rate (ct/s)")
    ax.set_title(title, fontsize=9)
    return _save(plt, fig, out)


def image_png(image: Path, out: Path, title: str) -> Path | None:
    """A log-scaled view of a count image."""
    from astropy.io import fits

    try:
        data = np.asarray(fits.getdata(image), float)
    except Exception as exc:
        log.warning("image %s: %s", image, exc)
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=80)
    ax.imshow(np.log1p(data), origin="lower", cmap="magma")
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return _save(plt, fig, out)


def observation_pictures(layout: ArchiveLayout, obsid: str) -> list[Path]:
    """Every quick-look picture that can be drawn for ``obsid`` from its products."""
    pics: list[Path] = []
    qdir = layout.obs_dir(obsid) / "quicklook"
    for gti in sorted(layout.cleaning_dir(obsid).glob("*-gti.fits")):
        stem = gti.name[: -len("-gti.fits")]  # e.g. pnS003
        events = layout.background_dir(obsid) / f"{stem}-allevc.fits"
        if events.exists():
            pic = lightcurve_png(events, gti, qdir / f"{stem}-lightcurve.png", f"{obsid} {stem}: espfilt light curve, GTIs shaded")
            if pic:
                pics.append(pic)
    for img in sorted(layout.images_dir(obsid).glob("*img.fits")):
        pic = image_png(img, qdir / (img.name[: -len(".fits")] + ".png"), img.name)
        if pic:
            pics.append(pic)
    return pics
