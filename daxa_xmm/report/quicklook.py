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
from daxa_xmm.odf.fitsread import primary_header

log = logging.getLogger(__name__)

#: An image narrower than this (in pixels) gets no picture: a degenerate image shows nothing.
_MIN_PIXELS = 8


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, out: Path) -> Path:
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


def display_norm(data: np.ndarray):
    """(lightly smoothed image, asinh ImageNormalize over 0 to its 99.9th percentile)."""
    from astropy.convolution import Gaussian2DKernel, convolve_fft
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

    smooth = convolve_fft(np.nan_to_num(data), Gaussian2DKernel(1.0)) if data.size <= 2048 * 2048 else data
    vmax = max(float(PercentileInterval(99.9).get_limits(smooth)[1]), 1e-3)
    return smooth, ImageNormalize(vmin=0.0, vmax=vmax, stretch=AsinhStretch(a=0.05))


def image_png(image: Path, out: Path, title: str) -> Path | None:
    """A count image as astronomers look at one: asinh stretch, colour bar in counts.

    X-ray count images are sparse (most pixels 0 or 1): a linear or plain log stretch shows
    a black square. The asinh stretch over the 0 to 99.9th-percentile range of a lightly
    smoothed image shows the faint sources and the field of view.
    """
    from astropy.io import fits

    if _too_small(image):
        return None
    try:
        data = np.asarray(fits.getdata(image), float)
    except Exception as exc:
        log.warning("image %s: %s", image, exc)
        return None
    if data.ndim != 2 or min(data.shape) < _MIN_PIXELS or not np.isfinite(data).any():
        return None  # nothing an astronomer could look at: no picture (and no second of drawing)
    smooth, norm = display_norm(data)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.0), dpi=90)
    shown = ax.imshow(smooth, origin="lower", cmap="magma", norm=norm)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("counts per pixel (smoothed)", fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    return _save(plt, fig, out)


def _too_small(image: Path) -> bool:
    """Whether the primary header says the image is too small to show, read from the header
    alone. Such an image leaves no picture, so every report would load it again to find that
    out (a millisecond of astropy each, a quarter of a re-run's report at 1,000
    observations). False when the header cannot tell (no primary image: astropy's ``getdata``
    then looks in the extensions, and decides as before)."""
    try:
        cards = primary_header(image)
    except (OSError, ValueError):
        return False
    dims = [d for d in (cards.get("NAXIS1"), cards.get("NAXIS2")) if type(d) is int]
    return cards.get("NAXIS") == 2 and len(dims) == 2 and 1 <= min(dims) < _MIN_PIXELS


def _drawn(out: Path, *sources: Path) -> bool:
    """The picture exists and is newer than what it shows (a re-run need not draw it again)."""
    try:
        return out.stat().st_mtime >= max(s.stat().st_mtime for s in sources)
    except OSError:
        return False


def observation_pictures(layout: ArchiveLayout, obsid: str) -> list[Path]:
    """Every quick-look picture that can be drawn for ``obsid`` from its products (drawn
    again only when its products changed)."""
    pics: list[Path] = []
    qdir = layout.obs_dir(obsid) / "quicklook"
    for gti in sorted(layout.cleaning_dir(obsid).glob("*-gti.fits")):
        stem = gti.name[: -len("-gti.fits")]  # e.g. pnS003
        events = layout.background_dir(obsid) / f"{stem}-allevc.fits"
        out = qdir / f"{stem}-lightcurve.png"
        if _drawn(out, events, gti):
            pics.append(out)
        elif events.exists():
            pic = lightcurve_png(events, gti, out, f"{obsid} {stem}: espfilt light curve, GTIs shaded")
            if pic:
                pics.append(pic)
    for img in sorted(layout.images_dir(obsid).glob("*img.fits")):
        out = qdir / (img.name[: -len(".fits")] + ".png")
        pic = out if _drawn(out, img) else image_png(img, out, img.name)
        if pic:
            pics.append(pic)
    return pics
