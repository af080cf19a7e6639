"""The observation table of a local archive: DAXA's ``all_obs_info``, read from the ODFs.

DAXA's XMMPointed asks the XMM-Newton Science Archive for a table of every pointed
observation (a pandas DataFrame: ``ra, dec, ObsID, start, science_usable, duration,
proprietary_end_date, revolution, proprietary_usable, end``). Here the observations are the
ObsID folders of a local archive and each row comes from that ODF's own files, so no network
is needed: ObsID, revolution, start and end from the OBSERVATION record of ``SUM.ASC``
(:func:`daxa_xmm.odf.summary.read_observation_record`), RA, Dec and target from its
PROPOSAL record (:mod:`daxa_xmm.odf.proposal`), and the instruments from the constituents'
names.

The table is an :class:`astropy.table.Table` (pandas is not a dependency): ``start`` and
``end`` are :class:`~astropy.time.Time` columns (UTC), ``duration`` a Quantity column in
seconds, ``ra``/``dec`` in degrees (NaN when the ODF has no PROPOSAL record), ``target`` and
``instruments`` (comma separated, e.g. ``M1,M2,PN,R1``) strings, as extra columns. Local ODFs
are yours to use: ``proprietary_usable`` is True and ``proprietary_end_date`` None. An ObsID
folder whose SUM.ASC cannot be read stays in the table with ``science_usable`` False (DAXA
marks the archive's unusable observations the same way) and a warning naming the file.
"""

from __future__ import annotations

__all__ = ["COLUMNS", "read_obs_table"]

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from daxa_xmm.errors import DaxaXmmError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import INSTRUMENTS
from daxa_xmm.odf.proposal import Proposal, read_proposal

log = logging.getLogger(__name__)

#: The table's columns: DAXA's XMMPointed columns, in its order, then ours.
COLUMNS: tuple[str, ...] = ("ra", "dec", "ObsID", "start", "science_usable", "duration", "proprietary_end_date",
                            "revolution", "proprietary_usable", "end", "target", "instruments")

_EPOCH = datetime(1998, 1, 1, tzinfo=timezone.utc)  # a placeholder time for an unreadable row


@dataclass(frozen=True)
class _Row:
    obsid: str
    usable: bool
    start: datetime = _EPOCH
    end: datetime = _EPOCH
    revolution: int = -1
    proposal: Proposal = Proposal()
    instruments: str = ""


def _instruments(layout: ArchiveLayout, obsid: str) -> str:
    """Instruments with constituents in the ODF (``{rev}_{obsid}_{inst}...``), in DAXA's naming."""
    found = {p.name.split(f"_{obsid}_", 1)[1][:2] for p in layout.odf_files(obsid)}
    return ",".join(i for i in sorted(INSTRUMENTS) if i in found)


def _row(layout: ArchiveLayout, obsid: str) -> _Row:
    from daxa_xmm.odf.summary import read_observation_record

    try:
        asc = layout.odf_sum_asc(obsid)
        record = read_observation_record(asc, obs_id=obsid)
        proposal = read_proposal(asc) or Proposal()
        insts = _instruments(layout, obsid)
    except (DaxaXmmError, OSError) as exc:
        log.warning("ObsID %s: not usable: %s", obsid, exc)
        return _Row(obsid, usable=False)
    return _Row(obsid, True, record.start, record.end, int(record.revolution), proposal, insts)


def read_obs_table(layout: ArchiveLayout, obsids: list[str] | None = None) -> Table:
    """One row per ObsID folder of ``layout.raw_root`` (or per ObsID of ``obsids``), sorted.

    Raises:
        LayoutError: the archive folder does not exist.
    """
    rows = [_row(layout, o) for o in (layout.obsids() if obsids is None else sorted(obsids))]
    table = Table()
    table["ra"] = np.array([r.proposal.ra_deg for r in rows], dtype=float) * u.deg
    table["dec"] = np.array([r.proposal.dec_deg for r in rows], dtype=float) * u.deg
    table["ObsID"] = np.array([r.obsid for r in rows], dtype="U10")
    table["start"] = Time([r.start for r in rows] or np.zeros(0), format="datetime" if rows else "mjd", scale="utc")
    table["science_usable"] = np.array([r.usable for r in rows], dtype=bool)
    table["duration"] = np.array([(r.end - r.start).total_seconds() for r in rows], dtype=float) * u.s
    table["proprietary_end_date"] = np.array([None] * len(rows), dtype=object)
    table["revolution"] = np.array([r.revolution for r in rows], dtype=int)
    table["proprietary_usable"] = np.ones(len(rows), dtype=bool)
    table["end"] = Time([r.end for r in rows] or np.zeros(0), format="datetime" if rows else "mjd", scale="utc")
    table["target"] = np.array([r.proposal.target for r in rows], dtype=str) if rows else np.zeros(0, dtype="U1")
    table["instruments"] = np.array([r.instruments for r in rows], dtype=str) if rows else np.zeros(0, dtype="U1")
    for row in rows:
        if row.usable and math.isnan(row.proposal.ra_deg):
            log.info("ObsID %s: no pointing in its SUM.ASC (no PROPOSAL record): RA and Dec are NaN", row.obsid)
    return table
