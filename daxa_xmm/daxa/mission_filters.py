"""The masks behind XMMPointed's filters (:mod:`daxa_xmm.daxa.mission`), as pure functions.

Each takes columns of the observation table and returns one bool per observation (or per
position and observation), so the rules can be tested without an archive. Positions are
FK5 degrees as DAXA assumes for bare numbers; an observation without a pointing (NaN) is
never near anything. Times are compared as astropy Times in UTC, so a naive datetime
(DAXA's users pass ``datetime(2004, 6, 1)``) is read as UTC.
"""

from __future__ import annotations

__all__ = ["as_coords", "distances", "near", "in_box", "in_window", "named", "position_table"]

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, SkyCoord
from astropy.table import Table
from astropy.time import Time

from daxa_xmm.errors import ConfigError


def as_coords(positions: Any) -> SkyCoord:
    """One or more positions as a 1-d SkyCoord in FK5: a SkyCoord, ``[ra, dec]`` or
    ``[[ra, dec], ...]`` (degrees)."""
    if isinstance(positions, SkyCoord):
        coords = positions.transform_to(FK5())
    else:
        arr = np.asarray(positions, dtype=float)
        if arr.ndim == 1 and arr.shape == (2,):
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ConfigError(f"positions {positions!r}: pass a SkyCoord, [ra, dec] or [[ra, dec], ...] in degrees")
        coords = SkyCoord(arr[:, 0] * u.deg, arr[:, 1] * u.deg, frame=FK5)
    return coords.reshape((1,)) if coords.isscalar else coords


def distances(search_distance: Any, coords: SkyCoord, default: u.Quantity) -> u.Quantity:
    """One search radius per position: ``default`` when None, a number in degrees, or one
    value per position."""
    if search_distance is None:
        value = default
    elif isinstance(search_distance, dict):
        raise ConfigError("search_distance: XMM-Newton's instruments share one field of view; pass one distance, not a dict")
    else:
        value = search_distance if isinstance(search_distance, u.Quantity) else u.Quantity(search_distance, u.deg)
    try:
        value = value.to(u.deg)
    except u.UnitConversionError:
        raise ConfigError(f"search_distance={search_distance!r} must be an angle") from None
    if value.isscalar:
        return np.full(len(coords), value.value) * u.deg
    if len(value) != len(coords):
        raise ConfigError(f"{len(value)} search distances for {len(coords)} positions: pass one, or one per position")
    return value


def near(obs: SkyCoord, coords: SkyCoord, radius: u.Quantity) -> np.ndarray:
    """``[position, observation]``: True where the observation is pointed within that
    position's radius."""
    return np.array([np.asarray(obs.separation(c) <= r) for c, r in zip(coords, radius, strict=True)], dtype=bool).reshape(
        len(coords), len(obs))


def in_box(obs: SkyCoord, lower_left: SkyCoord, upper_right: SkyCoord) -> np.ndarray:
    """Pointings in the RA-Dec box between two corners (RA from low to high; corners given
    the other way round are swapped, as DAXA does)."""
    ra_lo, ra_hi = sorted((float(lower_left.ra.deg[0]), float(upper_right.ra.deg[0])))
    dec_lo, dec_hi = sorted((float(lower_left.dec.deg[0]), float(upper_right.dec.deg[0])))
    ra, dec = obs.ra.deg, obs.dec.deg
    return np.asarray((ra >= ra_lo) & (ra <= ra_hi) & (dec >= dec_lo) & (dec <= dec_hi), dtype=bool)


def _utc(t: datetime | Time) -> Time:
    if isinstance(t, Time):
        return t
    if not isinstance(t, datetime):
        raise ConfigError(f"{t!r}: pass a datetime (naive ones are UTC) or an astropy Time")
    return Time(t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc), scale="utc")


def in_window(start: Time, end: Time, window_start: datetime | Time, window_end: datetime | Time, over_run: bool) -> np.ndarray:
    """Observations inside the window (``over_run`` False) or overlapping it (True), as
    DAXA's filter_on_time: start or end inside the window, or the window inside the observation."""
    lo, hi = _utc(window_start), _utc(window_end)
    if not over_run:
        return np.asarray((start >= lo) & (end <= hi), dtype=bool)
    return np.asarray(((start >= lo) & (start <= hi)) | ((end >= lo) & (end <= hi)) | ((start <= lo) & (end >= hi)), dtype=bool)


def _plain(name: str) -> str:
    return "".join(str(name).split()).upper()


def named(targets: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """Targets equal to one of ``names``, ignoring case and spaces (``Abell 1795`` is
    ``ABELL1795``)."""
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"object_name {list(names)!r}: pass one name or a list of names")
    wanted = {_plain(n) for n in names}
    return np.array([_plain(t) in wanted for t in targets], dtype=bool)


def position_table(coords: SkyCoord, matched: np.ndarray, obs_ids: np.ndarray) -> Table:
    """DAXA's return of ``filter_on_positions(..., return_pos_obs_info=True)``: one row per
    position with a selected observation near it: ``pos_ind, pos_ra, pos_dec, ObsIDs``
    (ObsIDs comma separated)."""
    rows = [i for i in range(len(coords)) if matched[i].any()]
    return Table({
        "pos_ind": np.array(rows, dtype=int),
        "pos_ra": np.array([coords[i].ra.deg for i in rows], dtype=float),
        "pos_dec": np.array([coords[i].dec.deg for i in rows], dtype=float),
        "ObsIDs": np.array([",".join(obs_ids[matched[i]]) for i in rows], dtype=str) if rows else np.zeros(0, dtype="U1"),
    })
