"""What the report's science summary reads from each SAS product, and a cache of it.

Each reader takes one product and returns a small JSON-able dict. It reads headers and only
the column it needs with :mod:`daxa_xmm.odf.fitsread` (no astropy object model: a header
costs about a millisecond, an astropy open tens), so a report over thousands of
observations reads what it must and no more. Where each number comes from, with its source
(the real cleaned lists of ``xmm-samples/events``, SAS's documentation), is in
docs/SAS_FIDELITY.md, "What the report reads of each product":

- an event list's events: its ``EVENTS`` table's rows (``NAXIS2``, a header card);
- the chain's on time: the chain list's ``EVENTS`` keyword ``ONTIME`` (else the largest
  ``ONTIMEnn``, else the largest sum of one CCD's ``STDGTInn`` intervals);
- the cleaned list's good time: its ``EVENTS`` keywords ``ONTIME`` and ``LIVETIME`` (else
  the largest ``ONTIMEnn``/``LIVETInn``), which evselect's ``updateexposure=yes`` rewrites
  for the selection; never its ``STDGTInn``, which real SAS leaves as the chain's;
- counts per band: the cleaned list's events with ``lo <= PI <= hi``, as the images'
  ``PI in [lo:hi]`` selects them;
- espfilt's good time: the sum of its GTI table's ``STOP - START``;
- emanom's CCD states: its log (:func:`daxa_xmm.sas.emanom_log.parse_emanom_states`).

:class:`ProductCache` keeps each reading with the product's size and modification time in
the observation's ``report-cache.json``: a re-report (every run ends with one, and the
nightly re-check of a whole archive) stats each product and reads only those that changed,
instead of every event list's ``PI`` column again (gigabytes over a large archive).
"""

from __future__ import annotations

__all__ = ["CACHE_VERSION", "ProductCache", "ccd_states", "chain_list_numbers", "cleaned_list_numbers", "gti_seconds"]

import json
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from daxa_xmm.atomic import atomic_write_text
from daxa_xmm.layout import band_label
from daxa_xmm.odf.fitsread import Hdu, column_chunks, find, read_hdus, table_columns
from daxa_xmm.sas.emanom_log import parse_emanom_states

log = logging.getLogger(__name__)

#: Bumped whenever a reader's result changes meaning: older cache entries are then ignored.
CACHE_VERSION = 1

_PER_CCD = {"ONTIME": re.compile(r"ONTIME\d\d"), "LIVETIME": re.compile(r"LIVETI\d\d")}
_STDGTI = re.compile(r"STDGTI\d\d")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _keyword_time(cards: dict[str, object], key: str) -> float | None:
    """``key`` (ONTIME or LIVETIME) of an EVENTS header, else the largest per-CCD value."""
    whole = _number(cards.get(key))
    if whole is not None:
        return whole
    per_ccd = [v for k, c in cards.items() if _PER_CCD[key].fullmatch(k) and (v := _number(c)) is not None]
    return max(per_ccd) if per_ccd else None


def _gti_total(path: Path, hdu: Hdu) -> float:
    """The good time of one GTI table: the sum of ``STOP - START`` over its rows, in s."""
    cols = table_columns(path, hdu, ("START", "STOP"))
    return float(sum(stop - start for start, stop in zip(cols["START"], cols["STOP"], strict=True)))


def chain_list_numbers(path: Path) -> dict[str, Any]:
    """The chain's event list (epchain's ``PIEVLI``, emchain's ``MIEVLI``): its events and
    its on time before any cleaning.

    Returns:
        ``{"events": rows of EVENTS, "ontime_s": seconds or None}``.
    """
    hdus = read_hdus(path)
    events = find(hdus, "EVENTS")
    ontime = _keyword_time(events.cards, "ONTIME")
    if ontime is None:
        per_ccd = [_gti_total(path, h) for h in hdus if h.name is not None and _STDGTI.fullmatch(h.name)]
        ontime = max(per_ccd) if per_ccd else None
    return {"events": events.integer("NAXIS2"), "ontime_s": ontime}


def cleaned_list_numbers(path: Path, bands: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """The cleaned event list: its events, good time and dead-time-corrected exposure after
    the selection, and its events per band.

    Args:
        path: the cleaned list.
        bands: ``(lo_ev, hi_ev)`` pairs; each counts the events with ``lo <= PI <= hi``, the
            ends rounded to whole eV as the image's ``PI in [lo:hi]`` has them.

    Returns:
        ``{"events", "ontime_s", "livetime_s", "counts": {band label: events}}``.
    """
    hdus = read_hdus(path)
    events = find(hdus, "EVENTS")
    limits = [(int(round(lo)), int(round(hi))) for lo, hi in bands]
    counts = [0] * len(limits)
    if events.integer("NAXIS2"):
        for pi in column_chunks(path, events, "PI"):
            for i, (lo, hi) in enumerate(limits):
                counts[i] += int(((pi >= lo) & (pi <= hi)).sum())
    return {
        "events": events.integer("NAXIS2"),
        "ontime_s": _keyword_time(events.cards, "ONTIME"),
        "livetime_s": _keyword_time(events.cards, "LIVETIME"),
        "counts": {band_label(lo, hi): n for (lo, hi), n in zip(bands, counts, strict=True)},
    }


def gti_seconds(path: Path) -> dict[str, Any]:
    """espfilt's GTI file: the total of its good time intervals (its ``STDGTI`` table, else
    the first table with ``START`` and ``STOP``).

    Returns:
        ``{"gti_s": seconds}``.
    """
    hdus = read_hdus(path)
    tables = [h for h in hdus[1:] if h.cards.get("XTENSION") == "BINTABLE"]
    named = [h for h in tables if h.name == "STDGTI"]
    for hdu in named or tables:
        if {"START", "STOP"} <= {v for k, v in hdu.cards.items() if k.startswith("TTYPE")}:
            return {"gti_s": _gti_total(path, hdu)}
    raise ValueError("no table with START and STOP")


def ccd_states(path: Path) -> dict[str, Any]:
    """emanom's log: each CCD it judged with its state letter.

    Returns:
        ``{"states": {"2": "G", ...}}`` (CCD numbers as text, as JSON keys are).
    """
    return {"states": {str(ccd): state for ccd, state in parse_emanom_states(path).items()}}


class ProductCache:
    """Readings of an observation's products, kept beside its manifest between reports.

    An entry is the reading of one product for one purpose, stamped with the product's size
    and modification time (in ns) when it was read; it is used again only while both are
    unchanged. Products are written whole and moved into place (daxa_xmm/atomic.py), so a
    remade product has a new time. Keys hold paths relative to the observation's folder, so a
    folder moved or copied with its times (``mv``, ``cp -a``) keeps its cache. A product
    that cannot be read is kept as ``{"error": why}`` until it changes. The cache is written
    only when it changed, atomically; a cache that cannot be read or written is only slower.

    Args:
        path: the cache file (:meth:`daxa_xmm.layout.ArchiveLayout.report_cache`).
        root: the observation's folder.
    """

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root
        self._old = self._load()
        self._new: dict[str, Any] = {}
        self.reads = 0  #: products read (not taken from the cache) since this was made

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
            return {}
        return data["entries"]

    def _key(self, product: Path, what: str) -> str:
        try:
            return f"{what} {product.relative_to(self.root)}"
        except ValueError:
            return f"{what} {product}"

    def read(self, product: Path, what: str, reader: Callable[[Path], dict[str, Any]]) -> dict[str, Any] | None:
        """``reader(product)``, or its earlier result while the product is unchanged.

        Args:
            product: the file.
            what: what is read of it (a reader's name and its arguments): one entry each.
            reader: returns a JSON-able dict.

        Returns:
            The reading; None when the product does not exist; ``{"error": why}`` when it
            cannot be read. Never raises for the product's sake.
        """
        try:
            st = product.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return {"error": f"{type(exc).__name__}: {exc.strerror or exc}"}
        key, stamp = self._key(product, what), [st.st_size, st.st_mtime_ns]
        entry = self._old.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("value"), dict):
            value: dict[str, Any] = entry["value"]
        else:
            self.reads += 1
            try:
                value = reader(product)
            except Exception as exc:  # noqa: BLE001 - a broken product gives null numbers, never a broken report
                value = {"error": f"{type(exc).__name__}: {exc}"}
        self._new[key] = {"stamp": stamp, "value": value}
        return value

    def save(self) -> None:
        """Write the entries read or used since this was made (others are dropped), if they
        differ from the file's; a failure is logged, never raised."""
        if self._new == self._old:
            return
        try:
            text = json.dumps({"version": CACHE_VERSION, "entries": self._new}, separators=(",", ":"))
            atomic_write_text(self.path, text + "\n")
        except OSError as exc:
            log.warning("report cache %s not written: %s", self.path, exc.strerror or exc)
