"""Data quality: does a product SAS made hold what science downstream needs?

:mod:`daxa_xmm.sas.product_checks` asks whether a file is whole and shaped as its reader
needs; these checks ask what users meet later (DAXA issues #294, #303: broken images and
maps found only downstream, with no log to explain them). Each is read from the sources in
docs/SAS_FIDELITY.md ("Data quality"):

- ``flare_gti``, espfilt's GTI: its good time (the sum of ``STOP - START``) must be above a
  threshold; at or below it the exposure is fully flared.
- ``cleaned_events``, evselect's cleaned list: more ``EVENTS`` rows than a threshold, and
  good time above one (:func:`good_time_s`).
- ``image``, evselect's count image: a celestial WCS as evselect writes it from the sky X/Y
  columns, ``CTYPE1 = 'RA---TAN'``, ``CTYPE2 = 'DEC--TAN'``, with finite reference values
  and non-zero pixel sizes (:func:`wcs_problem`).
- ``exposure_map``, eexpmap's map: that WCS, and a largest value (the exposure, in s, where
  the field of view is best exposed; pixels outside it are zero) above a threshold.

A product that fails is a *data-quality outcome*, not a SAS error: SAS did its work and the
data hold nothing usable. The run records it as such (``data_quality``), places the product
(for the user to look at) and runs nothing it feeds. Every threshold is a setting
(:class:`daxa_xmm.steps.quality.QualityConfig`); a product passes when what it measures is
above it, so the default of zero asks only that it is not empty.
"""

from __future__ import annotations

__all__ = ["QualityKind", "Limit", "Quality", "good_time_s", "event_count", "wcs_problem", "largest_value",
           "quality_problem", "DATA_QUALITY"]

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from daxa_xmm.odf.fitsread import Hdu, read_hdus, table_columns

QualityKind = Literal["flare_gti", "cleaned_events", "image", "exposure_map"]

#: How a data-quality outcome's message begins: it names the product and the check, and says
#: it is not SAS's doing (DAXA's records and the report show it apart from SAS errors).
DATA_QUALITY = "data quality, not a SAS error"

#: The celestial axes evselect writes for an image binned in sky X/Y (the real sample image:
#: CTYPE1 = 'RA---TAN', CTYPE2 = 'DEC--TAN', from the event list's TCTYP of X and Y).
CELESTIAL = ("RA---TAN", "DEC--TAN")

_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_STDGTI = re.compile(r"STDGTI(\d\d)$")


@dataclass(frozen=True)
class Limit:
    """A threshold: what the product measures must be above ``value``; ``setting`` is where
    a user sets it (``quality.min_flare_gti``), named in the outcome's message."""

    value: float
    setting: str


@dataclass(frozen=True)
class Quality:
    """What one product must show to be worth the next step.

    Attributes:
        kind: what the product is (see the module docstring).
        good_time: its good time in s must be above this (``flare_gti``, ``cleaned_events``).
        events: it must hold more events than this (``cleaned_events``).
        exposure: its largest value in s must be above this (``exposure_map``).
    """

    kind: QualityKind
    good_time: Limit | None = None
    events: Limit | None = None
    exposure: Limit | None = None

    def raised(self) -> dict[str, float]:
        """The thresholds above zero, by setting: what the call's fingerprint folds in. At the
        defaults (all zero) there are none, so calls keep the fingerprints of runs made before
        these checks existed and are not redone for them."""
        return {lim.setting: lim.value for lim in (self.good_time, self.events, self.exposure)
                if lim is not None and lim.value != 0}


def _is_gti(hdu: Hdu) -> bool:
    names = {v for k, v in hdu.cards.items() if k.startswith("TTYPE")}
    name = hdu.name or ""
    return {"START", "STOP"} <= names and (hdu.cards.get("HDUCLAS1") == "GTI" or name.startswith(("STDGTI", "GTI")))


def _ccd(hdu: Hdu) -> int | None:
    """The CCD a GTI table is of (``CCDID``, else the nn of ``STDGTInn``); None: the whole list."""
    ccd = hdu.cards.get("CCDID")
    if isinstance(ccd, int) and not isinstance(ccd, bool):
        return ccd
    match = _STDGTI.match(hdu.name or "")
    return int(match.group(1)) if match else None


def good_time_s(path: str | os.PathLike[str], hdus: list[Hdu] | None = None) -> float | None:
    """The good time of a GTI file or event list, in s; None when it has no GTI table.

    A GTI table is a table with ``START`` and ``STOP`` (``HDUCLAS1 = 'GTI'``, or named
    ``STDGTI``/``GTI...``). Each CCD's good time is the smallest total among the tables of
    that CCD and those of no CCD, since each of them bounds it: a real cleaned list keeps
    the chain's ``STDGTInn`` and adds the filter's ``GTI0nn06`` of the same ``CCDID``, and its
    ``EVENTS`` ``ONTIMEnn`` is the smaller total (the sample lists). The file's good time is
    that of its best CCD; for a file of CCD-less tables (espfilt's GTI), their smallest total.
    """
    hdus = read_hdus(path) if hdus is None else hdus
    by_ccd: dict[int | None, list[float]] = {}
    for hdu in hdus[1:]:
        if not _is_gti(hdu):
            continue
        cols = table_columns(path, hdu, ("START", "STOP"))
        total = sum(max(0.0, float(b) - float(a)) for a, b in zip(cols["START"], cols["STOP"], strict=True))
        by_ccd.setdefault(_ccd(hdu), []).append(total)
    if not by_ccd:
        return None
    whole = by_ccd.pop(None, [])
    if not by_ccd:
        return min(whole)
    return max(min(totals + whole) for totals in by_ccd.values())


def event_count(hdus: list[Hdu]) -> int | None:
    """Rows of the ``EVENTS`` table (its NAXIS2: no data read); None when there is none."""
    events = next((h for h in hdus[1:] if h.name == "EVENTS"), None)
    return None if events is None else events.integer("NAXIS2")


def _number(cards: dict[str, object], key: str) -> float | None:
    value = cards.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def wcs_problem(cards: dict[str, object]) -> str | None:
    """Why a primary header has no usable celestial WCS, or None when it has one.

    Asks for what evselect writes (the sample image): ``CTYPE1``/``CTYPE2`` ``RA---TAN`` and
    ``DEC--TAN``, ``CRVAL1`` in [0, 360] and ``CRVAL2`` in [-90, 90] degrees, finite
    ``CRPIXn`` and a finite non-zero pixel size (``CDELTn``, or a ``CDi_j`` matrix whose
    determinant is not zero).
    """
    found = tuple(str(cards.get(f"CTYPE{i}", "")).strip() for i in (1, 2))
    if found != CELESTIAL:
        shown = "/".join(t or "none" for t in found)
        return f"no celestial WCS (CTYPE1/CTYPE2 {shown}, not {'/'.join(CELESTIAL)})"
    ra, dec = _number(cards, "CRVAL1"), _number(cards, "CRVAL2")
    if ra is None or dec is None or not (0 <= ra <= 360 and -90 <= dec <= 90):
        return f"a WCS reference point that is not on the sky (CRVAL1 {cards.get('CRVAL1')}, CRVAL2 {cards.get('CRVAL2')})"
    if _number(cards, "CRPIX1") is None or _number(cards, "CRPIX2") is None:
        return "a WCS without a finite reference pixel (CRPIX1, CRPIX2)"
    cdelt = [_number(cards, f"CDELT{i}") for i in (1, 2)]
    if all(c is not None and c != 0 for c in cdelt):
        return None
    cd = [_number(cards, f"CD{i}_{j}") or 0.0 for i in (1, 2) for j in (1, 2)]
    if cd[0] * cd[3] - cd[1] * cd[2] != 0:
        return None
    return "a WCS without a pixel size (CDELT1/CDELT2 missing or zero, and no CD matrix)"


def largest_value(path: str | os.PathLike[str], hdu: Hdu) -> float | None:
    """The largest finite value of a primary image (BSCALE and BZERO applied); None when it
    has no finite value at all."""
    import numpy as np

    bitpix = hdu.integer("BITPIX")
    if bitpix not in _BITPIX:
        raise ValueError(f"BITPIX {bitpix} is not a FITS image type")
    n = math.prod(hdu.integer(f"NAXIS{i + 1}") for i in range(hdu.integer("NAXIS")))
    with open(path, "rb") as fh:
        fh.seek(hdu.data_offset)
        raw = np.frombuffer(fh.read(n * abs(bitpix) // 8), dtype=_BITPIX[bitpix], count=n)
    scale, zero = _number(hdu.cards, "BSCALE"), _number(hdu.cards, "BZERO")
    values = raw.astype(float) * (1.0 if scale is None else scale) + (0.0 if zero is None else zero)
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def _seconds(x: float) -> str:
    return f"{x:.6g} s"


def _above(limit: Limit, unit: str = " s") -> str:
    return f"needs more than {limit.value:g}{unit}, {limit.setting}"


def quality_problem(path: str | os.PathLike[str], quality: Quality) -> str | None:
    """Why the product at ``path`` fails its data-quality check, or None when it passes.

    The message names the file, what it lacks, what was measured and the setting of the
    threshold. Call it on a product that passed its structure check
    (:func:`daxa_xmm.sas.product_checks.check_product`).

    Raises:
        OSError, ValueError: the file cannot be read as that check needs.
    """
    name = Path(path).name
    hdus = read_hdus(path)
    if quality.kind in ("image", "exposure_map"):
        problem = wcs_problem(hdus[0].cards)
        if problem is not None:
            return f"{name}: {problem}"
    if quality.kind == "exposure_map" and quality.exposure is not None:
        peak = largest_value(path, hdus[0])
        if peak is None or peak <= quality.exposure.value:
            said = "no finite value" if peak is None else ("all zero" if peak == 0 else f"at most {_seconds(peak)}")
            what = "no exposure" if not peak or peak <= 0 else "too little exposure"
            return f"{name}: {what} in the field of view (the map is {said}; {_above(quality.exposure)})"
    if quality.kind == "cleaned_events" and quality.events is not None:
        events = event_count(hdus) or 0
        if events <= quality.events.value:
            what = "no events" if events == 0 else "too few events"
            return f"{name}: {what} left after cleaning ({events} in EVENTS; {_above(quality.events, '')})"
    if quality.kind in ("flare_gti", "cleaned_events") and quality.good_time is not None:
        good = good_time_s(path, hdus)
        if good is None or good <= quality.good_time.value:
            total = "no GTI table" if good is None else f"{_seconds(good)} of GTI"
            what = "no good time" if not good else "too little good time"
            if quality.kind == "flare_gti":
                what += " left after flare filtering" + ("" if good else ": the exposure is fully flared")
            return f"{name}: {what} ({total}; {_above(quality.good_time)})"
    return None
