"""Which sub-exposures of an observation become processing units, and why.

One rule set, applied to every exposure of an :class:`~daxa_xmm.odf.models.OdfSummary`; the
first rule an exposure fails is its reason for rejection, so reports can say exactly why
``PN U002`` was skipped. The rules, in order:

1. the instrument is one we process (PN, M1, M2, R1, R2; OM never makes a unit) and was
   requested;
2. the instrument was active;
3. the exposure is scheduled (``S``) or unscheduled (``U``) and, if unscheduled,
   ``process_unscheduled`` is on (``X`` ids are not exposures);
4. its type is ``SCIENCE``;
5. its mode is a science mode of that instrument. Diagnostic, Offset, Noise, ``UNDEFINED``
   and calibration (``Cal...``) modes are never science.

   - PN: the ``Prime...`` modes (PrimeFullWindow, PrimeFullWindowExtended,
     PrimeLargeWindow, PrimeSmallWindow) image. FastTiming and FastBurst (any timing or burst
     mode) have no imaging CCD for epchain's imaging chain and are rejected.
   - MOS: the ``Prime...`` modes (PrimeFullWindow, PrimePartialW2..W6, PrimePartialRFS)
     image on every CCD. ``FastUncompressed``/``FastCompressed`` put only the central CCD 1
     in timing; the six outer CCDs still image and emchain makes their imaging event list
     (which is why emchain is never given ``ccds=``), so these exposures are kept and their
     imaging CCDs listed. Other MOS modes are rejected as not imaging.
   - RGS: any mode that is not diagnostic/offset/calibration/UNDEFINED
     (HighEventRateWithSES, Spectroscopy...), provided step 7 finds spectroscopy CCDs;
6. EPIC only: its filter is not CalClosed, Closed, Blocked or Unknown (any case). An EPIC
   exposure with no FILTER line (``UNDEFINED``) is treated as Unknown and rejected: without
   the filter we cannot tell it was open. RGS has no filter and ignores this rule;
7. it has data to process: PN and MOS need at least one CCD whose ``DATA_MODE`` is
   ``Imaging`` (``Unit.ccds``; epchain gets them as ``ccds=``, for MOS they are
   informational), RGS at least one ``Spectroscopy`` CCD (RGS units carry no ccds).
"""

from __future__ import annotations

__all__ = ["UNIT_INSTRUMENTS", "CLOSED_FILTERS", "SelectionDecision", "explain_selection", "select_units"]

import re
from collections.abc import Iterable
from typing import NamedTuple

from daxa_xmm.errors import ConfigError
from daxa_xmm.odf.models import FILE_INST, UNIT_INSTRUMENTS, ExposureInfo, OdfSummary, Unit

#: Filter positions that let no sky light through (compared case-insensitively).
CLOSED_FILTERS: frozenset[str] = frozenset({"calclosed", "closed", "blocked", "unknown", "undefined"})

_NOT_SCIENCE = re.compile(r"diagnostic|offset|noise|undefined|^cal", re.IGNORECASE)
_TIMING = re.compile(r"timing|burst", re.IGNORECASE)
_PN_IMAGING = re.compile(r"^prime", re.IGNORECASE)
_MOS_IMAGING = re.compile(r"^(prime|fast(un)?compressed$)", re.IGNORECASE)
_BY_FILE_NAME = {v: k for k, v in FILE_INST.items()}


class SelectionDecision(NamedTuple):
    """Whether one exposure became a unit, and why; unpacks as ``(inst, exp_id, kept, reason)``."""

    inst: str
    exp_id: str
    kept: bool
    reason: str


def _normalise(instruments: str | Iterable[str]) -> tuple[str, ...]:
    """``("PN", "mos1")`` -> ``("PN", "M1")``; ConfigError for anything that makes no units."""
    names = (instruments,) if isinstance(instruments, str) else tuple(instruments)
    out = []
    for name in names:
        key = str(name).strip()
        key = _BY_FILE_NAME.get(key.lower(), key.upper())
        if key not in UNIT_INSTRUMENTS:
            raise ConfigError(f"instruments: {name!r} is not one of {', '.join(UNIT_INSTRUMENTS)} (OM is not processed)")
        out.append(key)
    return tuple(out)


def _ccds(exp: ExposureInfo, data_mode: str) -> tuple[int, ...]:
    return tuple(sorted(c for c, m in exp.ccd_modes.items() if m.lower() == data_mode.lower()))


def _span(ccds: tuple[int, ...]) -> str:
    return ",".join(map(str, ccds))


def _decide(
    inst: str, active: bool, exp: ExposureInfo, wanted: tuple[str, ...], process_unscheduled: bool
) -> tuple[bool, str, tuple[int, ...]]:
    """The first rule ``exp`` fails, or why it is kept, and its CCDs."""
    if inst not in UNIT_INSTRUMENTS:
        return False, f"{inst} is not processed (no unit type)", ()
    if inst not in wanted:
        return False, f"{inst} not among the requested instruments", ()
    if not active:
        return False, f"{inst} was not active", ()
    kind = exp.exp_id[0]
    if kind not in "SU":
        return False, f"{exp.exp_id} is not a scheduled or unscheduled exposure", ()
    if kind == "U" and not process_unscheduled:
        return False, "unscheduled exposure and process_unscheduled is off", ()
    if exp.type.upper() != "SCIENCE":
        return False, f"exposure type {exp.type}, not SCIENCE", ()
    mode = exp.mode
    if _NOT_SCIENCE.search(mode):
        return False, f"mode {mode} is not a science mode (diagnostic/offset/calibration)", ()
    if inst == "PN":
        if _TIMING.search(mode):
            return False, f"mode {mode} is timing/burst: no imaging CCDs for epchain", ()
        if not _PN_IMAGING.search(mode):
            return False, f"mode {mode} is not a PN imaging mode", ()
    elif inst in ("M1", "M2") and not _MOS_IMAGING.search(mode):
        return False, f"mode {mode} is not a MOS imaging mode", ()
    if inst in ("R1", "R2"):
        spectro = _ccds(exp, "Spectroscopy")
        if not spectro:
            return False, f"mode {mode}: no CCD in Spectroscopy data mode", ()
        return True, f"SCIENCE {mode}, spectroscopy CCDs {_span(spectro)}", ()
    if exp.filter.lower() in CLOSED_FILTERS:
        return False, f"filter {exp.filter}: no sky light", ()
    imaging = _ccds(exp, "Imaging")
    if not imaging:
        return False, f"mode {mode}: no CCD in Imaging data mode", ()
    return True, f"SCIENCE {mode} {exp.filter}, imaging CCDs {_span(imaging)}", imaging


def _decisions(
    summary: OdfSummary, instruments: str | Iterable[str], process_unscheduled: bool
) -> list[tuple[SelectionDecision, tuple[int, ...], ExposureInfo]]:
    wanted = _normalise(instruments)
    out = []
    for inst, info in summary.instruments.items():
        for exp_id, exp in info.exposures.items():
            kept, reason, ccds = _decide(inst, info.active, exp, wanted, process_unscheduled)
            out.append((SelectionDecision(inst, exp_id, kept, reason), ccds, exp))
    return out


def explain_selection(
    summary: OdfSummary,
    *,
    instruments: str | Iterable[str] = UNIT_INSTRUMENTS,
    process_unscheduled: bool = True,
) -> list[SelectionDecision]:
    """For every exposure in the summary (OM included), whether it is processed and why.

    Args:
        summary: the parsed odfingest summary.
        instruments: instruments to process, as ``PN, M1, M2, R1, R2`` (``mos1``-style names
            are accepted too).
        process_unscheduled: also process unscheduled (``U``) exposures, as DAXA's
            ``process_unscheduled`` does.

    Returns:
        One :class:`SelectionDecision` per exposure, in file order.

    Raises:
        ConfigError: an instrument that makes no units (e.g. ``OM``) was requested.
    """
    return [d for d, _, _ in _decisions(summary, instruments, process_unscheduled)]


def select_units(
    summary: OdfSummary,
    *,
    instruments: str | Iterable[str] = UNIT_INSTRUMENTS,
    process_unscheduled: bool = True,
) -> list[Unit]:
    """The processing units of an observation: its kept exposures (see module rules).

    Args:
        summary: the parsed odfingest summary.
        instruments: instruments to process (``PN``, ``M1``, ``M2``, ``R1``, ``R2``).
        process_unscheduled: also process unscheduled (``U``) exposures.

    Returns:
        Units in file order; PN and MOS units carry their imaging CCDs, RGS units none.

    Raises:
        ConfigError: an instrument that makes no units (e.g. ``OM``) was requested.
    """
    obsid = summary.observation.obsid
    return [
        Unit(obsid=obsid, inst=d.inst, exp_id=d.exp_id, mode=exp.mode, filter=exp.filter, ccds=ccds)
        for d, ccds, exp in _decisions(summary, instruments, process_unscheduled)
        if d.kept
    ]
