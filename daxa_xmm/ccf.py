"""Is an observation's calibration index (ccf.cif) still usable, and still current?

The manifest says cifbuild ran and its ccf.cif exists; it cannot see the calibration
folder change under it. Two things go wrong on a long-lived archive:

- a calibration file the index names is gone (the CCF folder was re-synced with
  ``--delete``, or moved): every later SAS task fails with a missing-constituent error;
- newer calibration was installed after the index was built: with ``analysisdate=now``
  the index is stale, and DESIGN section 4 asks for the observation to be reprocessed.

:func:`ccf_stale_reason` answers both from the index's CALINDEX table and the names of the
files in ``SAS_CCFPATH`` (``SCOPE_TYPEID_ISSUE.CCF``); file dates are not used, as a
re-sync may give old files new dates and new files old ones.
"""

from __future__ import annotations

__all__ = ["ccf_stale_reason", "listed_ccfs", "available_ccfs"]

import os
import re
from collections.abc import Iterable
from pathlib import Path

_CCF_NAME = re.compile(r"^(?P<scope>[A-Z0-9]+)_(?P<type>[A-Z0-9]+)_(?P<issue>\d{4})\.CCF$", re.IGNORECASE)


def listed_ccfs(cif: Path) -> list[tuple[str, str, int, str]]:
    """(scope, type, issue, file name) of every constituent the index lists.

    Raises:
        OSError: the file cannot be read, or is not a FITS calibration index.
    """
    from astropy.io import fits

    try:
        with fits.open(cif, memmap=False) as hdul:
            table = hdul["CALINDEX"].data
            rows = [(str(r["SCOPE"]).strip().upper(), str(r["TYPEID"]).strip().upper(), int(r["ISSUE"]),
                     str(r["FNAME"]).strip()) for r in table]
    except OSError:
        raise
    except Exception as exc:  # KeyError (no CALINDEX), astropy's VerifyError, TypeError...
        raise OSError(f"{cif}: not a calibration index file ({type(exc).__name__}: {exc})") from None
    return rows


def available_ccfs(ccfpaths: Iterable[Path]) -> dict[tuple[str, str], int]:
    """The newest issue of each (scope, type) found in the CCF folders."""
    newest: dict[tuple[str, str], int] = {}
    for folder in ccfpaths:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _CCF_NAME.match(name)
            if m:
                key = (m["scope"].upper(), m["type"].upper())
                newest[key] = max(newest.get(key, -1), int(m["issue"]))
    return newest


def ccf_stale_reason(cif: Path, ccfpaths: Iterable[Path], *, analysis_now: bool = True) -> str | None:
    """Why ``cif`` must be rebuilt, or None when it can be trusted.

    Args:
        cif: the observation's ccf.cif.
        ccfpaths: the folders of ``SAS_CCFPATH``.
        analysis_now: the index was built for ``analysisdate=now``; only then does newer
            calibration in the folders make it stale (a fixed analysis date reproduces an
            older set on purpose).

    Returns:
        A sentence naming the file at fault, or None.
    """
    folders = [Path(p) for p in ccfpaths]
    if not cif.is_file():
        return f"{cif} is missing"
    try:
        listed = listed_ccfs(cif)
    except OSError as exc:
        return f"{cif} is unreadable: {exc}"
    for _scope, _type, _issue, fname in listed:
        path = Path(fname)
        candidates = [path] if path.is_absolute() else [f / fname for f in folders]
        if not any(c.is_file() for c in candidates):
            return f"{cif} lists {fname}, which no longer exists"
    if analysis_now:
        have = {(s, t): i for s, t, i, _ in listed}
        for key, issue in sorted(available_ccfs(folders).items()):
            if key not in have or issue > have[key]:
                name = f"{key[0]}_{key[1]}_{issue:04d}.CCF"
                return f"{cif} predates {name} in SAS_CCFPATH (newer calibration)"
    return None
