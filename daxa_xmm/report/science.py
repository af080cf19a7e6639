"""The report's science summary: one entry per cleaned EPIC exposure (sub-exposure unit).

What an astronomer asks of a reprocessed archive before opening a file: how much good time
each exposure had, how much survived the flare filtering, how many events the cleaning kept,
how many fall in each image band, and which MOS CCDs emanom judged anomalous. Each
observation's exposures come from its manifest (every PN and MOS sub-exposure unit it has
records for); each number from one product, found by :class:`daxa_xmm.layout.ArchiveLayout`
and read by :mod:`daxa_xmm.report.readings` (where each number's source is named):

====================  ===============================  ======================================
field                 product (the step that made it)  what is read
====================  ===============================  ======================================
events_before         chain list (epchain, emchain)    EVENTS rows
ontime_s              chain list                       EVENTS ONTIME (or per-CCD, or STDGTI)
events_after          cleaned list (cleaning)          EVENTS rows
filtered_ontime_s     cleaned list                     EVENTS ONTIME after the selection
filtered_exposure_s   cleaned list                     EVENTS LIVETIME (dead time corrected)
counts                cleaned list                     events with PI in each image band
espfilt_gti_s         espfilt's GTI file (espfilt)     sum of STOP - START
ccd_states            emanom's log (emanom, MOS)       each judged CCD's state letter
====================  ===============================  ======================================

``flare_fraction`` is ``1 - filtered_ontime_s / ontime_s``: the share of the on time the
selection removed. It compares on times, not the dead-time-corrected exposure, so that dead
time (a few per cent in PN's faster modes) is not counted as flare. A product is read only
when the step that made it is recorded ``ok``; a missing or unreadable one, or one whose step
did not end ok, leaves its numbers null and says why in ``notes``: the report never breaks
for a product.
"""

from __future__ import annotations

__all__ = ["CSV_NAME", "ExposureSummary", "observation_exposures", "exposure_rows", "write_exposures_csv",
           "exposures_html"]

import csv
import html
import io
import json
import logging
import re
from collections.abc import Callable, Iterable
from functools import cache, partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from daxa_xmm.atomic import atomic_write_text
from daxa_xmm.layout import ArchiveLayout, band_label
from daxa_xmm.odf.models import EPIC
from daxa_xmm.report.readings import ProductCache, ccd_states, chain_list_numbers, cleaned_list_numbers, gti_seconds
from daxa_xmm.steps import clean_events, emanom, emchain, epchain, espfilt
from daxa_xmm.steps.images import ImageConfig

log = logging.getLogger(__name__)

#: The archive-wide table, beside report.json.
CSV_NAME = "exposures.csv"

_UNIT = re.compile(r"(?P<obsid>[0-9]{10})(?P<inst>PN|M1|M2)(?P<exp>[SUX][0-9]{3})")
_FIELDS = ("obsid", "unit", "instrument", "exposure", "mode", "filter", "status", "ontime_s", "filtered_ontime_s",
           "filtered_exposure_s", "flare_fraction", "espfilt_gti_s", "events_before", "events_after")


class ExposureSummary(BaseModel):
    """The science summary of one EPIC sub-exposure (null where a product is missing)."""

    unit: str = Field(description="the sub-exposure unit, e.g. 0123456789PNS003")
    instrument: str = Field(description="PN, M1 or M2")
    exposure: str = Field(description="the exposure id, e.g. S003")
    mode: str | None = Field(default=None, description="the exposure's mode, from the summary (as the chain recorded it)")
    filter: str | None = Field(default=None, description="the exposure's filter, from the summary")
    status: str | None = Field(default=None, description="the cleaning step's status; None when it never ran")
    ontime_s: float | None = Field(default=None, description="on time before cleaning: the chain list's ONTIME")
    filtered_ontime_s: float | None = Field(default=None, description="on time after cleaning: the cleaned list's ONTIME")
    filtered_exposure_s: float | None = Field(
        default=None, description="dead-time-corrected exposure after cleaning: the cleaned list's LIVETIME")
    flare_fraction: float | None = Field(default=None, description="1 - filtered_ontime_s / ontime_s")
    espfilt_gti_s: float | None = Field(default=None, description="total of espfilt's good time intervals")
    events_before: int | None = Field(default=None, description="events of the chain's list")
    events_after: int | None = Field(default=None, description="events of the cleaned list")
    counts: dict[str, int | None] = Field(default_factory=dict, description="cleaned events per image band (PI in [lo:hi])")
    ccd_states: dict[int, str] | None = Field(default=None, description="emanom's state of each CCD it judged (MOS)")
    accepted_ccds: list[int] | None = Field(
        default=None, description="the CCDs the cleaning kept by emanom's verdict; None when it filtered none")
    notes: list[str] = Field(default_factory=list, description="why a number is null")


def _records(manifest: Path) -> list[dict[str, Any]]:
    """The manifest's records as plain dicts, read without side effects: the report's step
    rows have already read it (and set a corrupt one aside), and validating every record
    again would double the report's time over a large archive."""
    try:
        data = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return []
    records = data.get("records") if isinstance(data, dict) else None
    return [r for r in records.values() if isinstance(r, dict)] if isinstance(records, dict) else []


@cache
def _default_bands() -> tuple[tuple[float, float], ...]:
    """The image step's default bands, made once: a settings model per observation would
    cost more than the rest of an observation's cached summary."""
    return tuple(ImageConfig().bands_ev())


def _bands(records: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The bands the observation's images were made in (their records' ``band_ev``), else
    the default bands of :class:`daxa_xmm.steps.images.ImageConfig`."""
    found = set()
    for r in records:
        band = (r.get("facts") or {}).get("band_ev")
        if isinstance(band, list) and len(band) == 2 and all(isinstance(v, (int, float)) for v in band):
            found.add((float(band[0]), float(band[1])))
    return sorted(found) or list(_default_bands())


def _ratio_left(after: float | None, before: float | None) -> float | None:
    if after is None or before is None or before <= 0:
        return None
    return 1.0 - after / before


class _Reader:
    """Reads one unit's products: only those whose step is recorded ok, noting why not."""

    def __init__(self, steps: dict[str, dict[str, Any]], cache: ProductCache) -> None:
        self.steps, self.cache = steps, cache
        self.notes: list[str] = []

    def __call__(self, step: str, path: Path, what: str, reader: Callable[[Path], dict[str, Any]]) -> dict[str, Any] | None:
        record = self.steps.get(step)
        if record is None:
            return None
        if record.get("status") != "ok":
            self.notes.append(f"{step} {record.get('status')}")
            return None
        value = self.cache.read(path, what, reader)
        if value is None:
            self.notes.append(f"{path.name} missing")
        elif "error" in value:
            self.notes.append(f"{path.name} unreadable: {value['error']}")
            return None
        return value


def _exposure(layout: ArchiveLayout, obsid: str, unit: str, steps: dict[str, dict[str, Any]],
              bands: list[tuple[float, float]], cache: ProductCache) -> ExposureSummary:
    m = _UNIT.fullmatch(unit)
    if m is None:  # (the caller picked the units by this pattern)
        raise ValueError(f"not an EPIC sub-exposure unit: {unit}")
    inst, exp = m["inst"], m["exp"]
    read = _Reader(steps, cache)
    chain_step = epchain.STAGE.name if inst == "PN" else emchain.STAGE.name
    chain = read(chain_step, layout.chain_events(obsid, inst, exp), "chain", chain_list_numbers) or {}
    labels = ",".join(band_label(lo, hi) for lo, hi in bands)
    clean = read(clean_events.STAGE.name, layout.clean_events(obsid, inst, exp), f"clean {labels}",
                 partial(cleaned_list_numbers, bands=bands)) or {}
    gti = read(espfilt.STAGE.name, layout.espfilt_gti(obsid, inst, exp), "gti", gti_seconds) or {}
    anom = (read(emanom.STAGE.name, layout.emanom_log(obsid, inst, exp), "emanom", ccd_states) or {}) if inst != "PN" else {}
    facts = (steps.get(chain_step) or {}).get("facts") or {}  # the chain's record says mode and filter
    cleaning = steps.get(clean_events.STAGE.name) or {}
    accepted = (cleaning.get("facts") or {}).get("accepted_ccds")
    counts = clean.get("counts") or {}
    return ExposureSummary(
        unit=unit, instrument=inst, exposure=exp,
        mode=facts.get("mode"), filter=facts.get("filter"), status=cleaning.get("status"),
        ontime_s=chain.get("ontime_s"), filtered_ontime_s=clean.get("ontime_s"), filtered_exposure_s=clean.get("livetime_s"),
        flare_fraction=_ratio_left(clean.get("ontime_s"), chain.get("ontime_s")),
        espfilt_gti_s=gti.get("gti_s"), events_before=chain.get("events"), events_after=clean.get("events"),
        counts={band_label(lo, hi): counts.get(band_label(lo, hi)) for lo, hi in bands},
        ccd_states={int(c): s for c, s in anom["states"].items()} if "states" in anom else None,
        accepted_ccds=accepted if isinstance(accepted, list) else None,
        notes=read.notes,
    )


def observation_exposures(layout: ArchiveLayout, obsid: str) -> list[ExposureSummary]:
    """The science summary of each EPIC sub-exposure the observation's manifest knows, PN
    first, then MOS1 and MOS2, each by exposure id. Never raises: a problem leaves the
    observation without exposures (logged), not the report without a page."""
    try:
        records = _records(layout.manifest(obsid))
        units: dict[str, dict[str, dict[str, Any]]] = {}
        for r in records:
            m = _UNIT.fullmatch(str(r.get("unit", "")))
            if m is not None and m["obsid"] == obsid and isinstance(r.get("step"), str):
                units.setdefault(m[0], {})[r["step"]] = r
        bands = _bands(records)
        cache = ProductCache(layout.report_cache(obsid), layout.obs_dir(obsid))
        order = {inst: i for i, inst in enumerate(EPIC)}
        out = [_exposure(layout, obsid, unit, steps, bands, cache)
               for unit, steps in sorted(units.items(), key=lambda kv: (order[kv[0][10:12]], kv[0][12:]))]
        cache.save()
        return out
    except Exception as exc:  # noqa: BLE001 - the summary is a reading of products; the report must stand
        log.warning("science summary of %s: %s: %s", obsid, type(exc).__name__, exc)
        return []


def _band_order(label: str) -> tuple[float, ...]:
    """``0.50-2.00keV`` -> (0.5, 2.0): bands sort by energy, not as text."""
    try:
        return tuple(float(x) for x in label.removesuffix("keV").split("-"))
    except ValueError:
        return (float("inf"),)


def _ccd_text(states: dict[int, str] | None) -> str | None:
    return None if states is None else " ".join(f"{c}:{s}" for c, s in sorted(states.items()))


def exposure_rows(observations: Iterable[tuple[str, list[ExposureSummary]]]) -> list[dict[str, Any]]:
    """One flat row per exposure (``counts_<band>`` columns; CCD states as ``2:G 3:I``), for
    the CSV and the Prefect table; every row has every band any exposure has (None where
    its observation's images had no such band)."""
    pairs = [(obsid, e) for obsid, exposures in observations for e in exposures]
    labels = sorted({b for _, e in pairs for b in e.counts}, key=_band_order)
    rows = []
    for obsid, e in pairs:
        row: dict[str, Any] = {"obsid": obsid, **e.model_dump(include=set(_FIELDS) - {"obsid"})}
        row = {f: row.get(f) for f in _FIELDS}
        row.update({f"counts_{b}": e.counts.get(b) for b in labels})
        row["ccd_states"] = _ccd_text(e.ccd_states)
        row["accepted_ccds"] = None if e.accepted_ccds is None else " ".join(map(str, e.accepted_ccds))
        row["notes"] = "; ".join(e.notes)
        rows.append(row)
    return rows


def write_exposures_csv(path: Path, observations: Iterable[tuple[str, list[ExposureSummary]]]) -> Path:
    """The archive's exposures as CSV (a header line, then one row per exposure; an empty
    cell where a number is null), written atomically."""
    rows = exposure_rows(observations)
    columns = list(rows[0]) if rows else [*_FIELDS, "ccd_states", "accepted_ccds", "notes"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, out.getvalue())


def _seconds(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def exposures_html(exposures: list[ExposureSummary]) -> str:
    """An observation's exposures as an HTML table (empty text when it has none)."""
    if not exposures:
        return ""
    e = html.escape
    labels = sorted({b for x in exposures for b in x.counts}, key=_band_order)
    heads = ["exposure", "filter", "mode", "cleaning", "on time (s)", "filtered on time (s)", "filtered exposure (s)",
             "flare", "espfilt GTI (s)", "events before", "events after", *(f"counts {b}" for b in labels),
             "CCD states", "notes"]
    parts = ["<table class='exposures'><tr>" + "".join(f"<th>{e(h)}</th>" for h in heads) + "</tr>"]
    for x in exposures:
        flare = "" if x.flare_fraction is None else f"{100 * x.flare_fraction:.1f}%"
        cells = [x.unit, x.filter or "", x.mode or "", x.status or "", _seconds(x.ontime_s), _seconds(x.filtered_ontime_s),
                 _seconds(x.filtered_exposure_s), flare, _seconds(x.espfilt_gti_s),
                 "" if x.events_before is None else str(x.events_before), "" if x.events_after is None else str(x.events_after),
                 *("" if x.counts.get(b) is None else str(x.counts[b]) for b in labels),
                 _ccd_text(x.ccd_states) or "", "; ".join(x.notes)]
        status = e(x.status or "")
        parts.append("<tr>" + "".join(f"<td class='{status}'>{e(c)}</td>" if i == 3 else f"<td>{e(c)}</td>"
                                      for i, c in enumerate(cells)) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)
