"""Fault actions that leave a whole product holding nothing usable: a data-quality outcome.

The other faults (:mod:`daxa_xmm.standin.faults`) break a call; these let it succeed (exit 0,
no error record, a product whose structure is whole) and then take out of its first output
what science downstream needs, as real data do:

- ``no_good_time``: every GTI table emptied (espfilt's GTI of a fully flared exposure: no
  interval below the flare threshold; a cleaned list with no good time left);
- ``no_events``: the ``EVENTS`` table emptied (a cleaned list whose selection kept nothing);
- ``no_wcs``: the celestial WCS keywords removed from the primary header, with the warning
  evselect prints when the binned columns carry none (``** evselect: warning (NoWCS), No WCS
  information available for image column X.``, as in the sample espfilt stderr log);
- ``zero_exposure``: the primary image's values set to zero (an exposure map that saw no
  exposure).

Each works on real products and on fast mode's placeholders alike (astropy is imported only
by the call that is degraded).
"""

from __future__ import annotations

__all__ = ["ACTIONS", "degrade"]

from pathlib import Path

from daxa_xmm.standin.common import atomic_path, warning
from daxa_xmm.standin.faults import DEGRADING as ACTIONS

#: The celestial WCS keywords evselect writes from the sky columns' TCTYP/TCRPX/TCRVL/TCDLT/TCUNI.
_WCS_KEYS = tuple(f"{k}{i}" for i in (1, 2) for k in ("CTYPE", "CRPIX", "CRVAL", "CDELT", "CUNIT"))


def _emptied(hdu):
    """A copy of a binary table with its columns and header but no rows."""
    from astropy.io import fits

    return fits.BinTableHDU(data=hdu.data[:0], header=hdu.header, name=hdu.name)


def degrade(action: str, task: str, path: Path | None) -> None:
    """Take out of ``path`` (the call's first output) what ``action`` names; nothing when the
    call left no such file.

    Raises:
        ValueError: an action this module does not know.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown degrading action {action!r}; choose from {sorted(ACTIONS)}")
    if path is None or not path.is_file():
        return
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        hdus = [h.copy() for h in hdul]
    if action == "no_good_time":
        hdus = [_emptied(h) if isinstance(h, fits.BinTableHDU) and {"START", "STOP"} <= set(h.columns.names) else h
                for h in hdus]
    elif action == "no_events":
        hdus = [_emptied(h) if isinstance(h, fits.BinTableHDU) and h.name == "EVENTS" else h for h in hdus]
    elif action == "no_wcs":
        for key in _WCS_KEYS:
            hdus[0].header.remove(key, ignore_missing=True, remove_all=True)
        warning(task, "NoWCS", "No WCS information available for image column X.")
    elif hdus[0].data is not None:  # zero_exposure
        hdus[0].data = hdus[0].data * 0
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
