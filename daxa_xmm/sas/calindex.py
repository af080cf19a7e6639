"""Is an observation's calibration index (ccf.cif) still usable, and still current?

The manifest says cifbuild ran and its ccf.cif exists; it cannot see the calibration
folder change under it. Two things go wrong on a long-lived archive:

- a calibration file the index names is gone (the CCF folder was re-synced with
  ``--delete``, or moved): every later SAS task fails with a missing-constituent error;
- newer calibration was installed after the index was built: with ``analysisdate=now``
  the index is stale, and DESIGN section 4 asks for the observation to be reprocessed.

A CCF folder holds several issues of each calibration type, each valid for a range of
dates, so "newer" means what cifbuild would choose, not the highest issue on disk. For each
scope and type cifbuild selects, among the files of ``SAS_CCFPATH``, the one with
``VALDATE <= observation date``, ``SUBDATE <= analysis date``, ``EVALDATE >= observation
date`` (when the file has one) and the highest issue (cifbuild's algorithm page, SAS 14 to
22). :func:`ccf_stale_reason` redoes that choice for the dates the index records in its
CALINDEX header (OBSVDATE, ANALDATE) and calls the index stale only when the choice
differs from the issue it lists. Files are found by name (``SCOPE_TYPEID_ISSUE.CCF``);
their dates are the keywords of their primary header, never file times (a re-sync may give
old files new dates). A header that cannot be read, or lacks VALDATE, counts as possibly
valid: the index is then called stale and the reason names the file.
"""

from __future__ import annotations

__all__ = ["CcfAttributes", "calindex_dates", "ccf_attributes", "ccf_stale_reason", "listed_ccfs",
           "available_ccfs", "CcfListing", "parse_ccf_date"]

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_CCF_NAME = re.compile(r"^(?P<scope>[A-Z0-9]+)_(?P<type>[A-Z0-9]+)_(?P<issue>\d{4})\.CCF$", re.IGNORECASE)
_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def parse_ccf_date(value: Any) -> datetime | None:
    """A CCF/CALINDEX date (``YYYY-MM-DD[Thh:mm:ss[.sss]]``, UTC) as a naive datetime, or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class CcfAttributes:
    """The validity attributes of one CCF constituent, from its primary header.

    Attributes:
        valdate: start of validity (VALDATE); None when unknown (see ``problem``).
        evaldate: end of validity (EVALDATE); None when the file has none (no end).
        subdate: submission date (SUBDATE); None when the file has none (no limit).
        problem: why the attributes are unknown (unreadable header, no or bad VALDATE...),
            else None.
    """

    valdate: datetime | None
    evaldate: datetime | None = None
    subdate: datetime | None = None
    problem: str | None = None


@functools.lru_cache(maxsize=1 << 16)
def _read_attributes(path: str, mtime_ns: int, size: int) -> CcfAttributes:
    """Read once per (path, mtime, size) in a process: a check of thousands of observations
    reads each CCF header once."""
    from astropy.io import fits

    try:
        header = fits.getheader(path, 0)
    except Exception as exc:  # OSError, astropy's VerifyError, a truncated file...
        return CcfAttributes(None, problem=f"header unreadable ({type(exc).__name__}: {exc})")
    if "VALDATE" not in header:
        return CcfAttributes(None, problem="no VALDATE in its header")
    dates: dict[str, datetime | None] = {}
    for key in ("VALDATE", "EVALDATE", "SUBDATE"):
        if key in header:
            dates[key] = parse_ccf_date(header[key])
            if dates[key] is None:
                return CcfAttributes(None, problem=f"its {key} {header[key]!r} is not a date")
    return CcfAttributes(dates["VALDATE"], dates.get("EVALDATE"), dates.get("SUBDATE"))


def ccf_attributes(path: Path) -> CcfAttributes:
    """VALDATE, EVALDATE and SUBDATE of a CCF file (cached per path, mtime and size)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return CcfAttributes(None, problem=f"cannot be read ({exc.strerror or exc})")
    return _read_attributes(str(path), st.st_mtime_ns, st.st_size)


def _read_calindex(cif: Path) -> tuple[list[tuple[str, str, int, str]], dict[str, Any]]:
    """The CALINDEX rows and header keywords of an index file (read once per path, mtime and
    size in a process: a re-run asks twice per observation, whether it is stale and what it lists).

    Raises:
        OSError: the file cannot be read, or is not a FITS calibration index.
    """
    st = os.stat(cif)
    rows, header = _calindex_cached(str(cif), st.st_mtime_ns, st.st_size)
    return list(rows), dict(header)


@functools.lru_cache(maxsize=256)
def _calindex_cached(cif: str, mtime_ns: int, size: int) -> tuple[tuple[tuple[str, str, int, str], ...],
                                                                   tuple[tuple[str, Any], ...]]:
    from daxa_xmm.odf.fitsread import find, read_hdus, table_columns

    try:
        hdu = find(read_hdus(cif), "CALINDEX")
        cols = table_columns(cif, hdu, ("SCOPE", "TYPEID", "ISSUE", "FNAME"))
        rows = tuple((str(scope).strip().upper(), str(typeid).strip().upper(), int(issue), str(fname).strip())
                     for scope, typeid, issue, fname in zip(cols["SCOPE"], cols["TYPEID"], cols["ISSUE"], cols["FNAME"], strict=True))
        header = tuple((k, hdu.cards.get(k)) for k in ("OBSVDATE", "ANALDATE"))
    except OSError:
        raise
    except (KeyError, ValueError, TypeError) as exc:  # no CALINDEX, not FITS, a column missing...
        raise OSError(f"{cif}: not a calibration index file ({type(exc).__name__}: {exc})") from None
    return rows, header


def listed_ccfs(cif: Path) -> list[tuple[str, str, int, str]]:
    """(scope, type, issue, file name) of every constituent the index lists.

    Raises:
        OSError: the file cannot be read, or is not a FITS calibration index.
    """
    return _read_calindex(cif)[0]


def calindex_dates(cif: Path) -> tuple[datetime | None, datetime | None]:
    """The observation and analysis dates (OBSVDATE, ANALDATE) the index was built for.

    None for a keyword that is missing or not a date.

    Raises:
        OSError: the file cannot be read, or is not a FITS calibration index.
    """
    header = _read_calindex(cif)[1]
    return parse_ccf_date(header["OBSVDATE"]), parse_ccf_date(header["ANALDATE"])


#: :func:`available_ccfs`'s answer: (scope, type) -> issue -> file.
CcfListing = Mapping[tuple[str, str], Mapping[int, Path]]


def available_ccfs(ccfpaths: Iterable[Path]) -> dict[tuple[str, str], dict[int, Path]]:
    """Every issue of each (scope, type) found in the CCF folders, with its file.

    When two folders hold the same issue, the first folder's file is kept.
    """
    found: dict[tuple[str, str], dict[int, Path]] = {}
    for folder in ccfpaths:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            m = _CCF_NAME.match(name)
            if m:
                issues = found.setdefault((m["scope"].upper(), m["type"].upper()), {})
                issues.setdefault(int(m["issue"]), Path(folder) / name)
    return found


def _select(issues: Mapping[int, Path], obsdate: datetime,
            analdate: datetime | None) -> tuple[int, Path, str | None] | None:
    """The issue cifbuild would choose among ``issues``: (issue, file, problem) or None.

    ``problem`` is set when the chosen file's attributes are unknown: it is taken as
    possibly valid. Only the issues from the highest down to the chosen one are read.
    """
    for issue in sorted(issues, reverse=True):
        path = issues[issue]
        attrs = ccf_attributes(path)
        if attrs.problem is not None:
            return issue, path, attrs.problem
        assert attrs.valdate is not None
        if attrs.valdate > obsdate:
            continue
        if attrs.evaldate is not None and attrs.evaldate < obsdate:
            continue
        if analdate is not None and attrs.subdate is not None and attrs.subdate > analdate:
            continue
        return issue, path, None
    return None


def _iso(date: datetime) -> str:
    return date.strftime("%Y-%m-%dT%H:%M:%S")


def ccf_stale_reason(cif: Path, ccfpaths: Iterable[Path], *, analysis_now: bool = True,
                     available: CcfListing | None = None) -> str | None:
    """Why ``cif`` must be rebuilt, or None when it can be trusted.

    Args:
        cif: the observation's ccf.cif.
        ccfpaths: the folders of ``SAS_CCFPATH``.
        analysis_now: the index was built for ``analysisdate=now``: calibration submitted
            since counts. Otherwise only files submitted by the index's ANALDATE count (a
            fixed analysis date reproduces an older set on purpose); an index without
            ANALDATE is then only checked for vanished files.
        available: :func:`available_ccfs` of ``ccfpaths``, when the caller listed them
            already: a check of many observations lists the folders once, not once per
            observation (a real ``SAS_CCFPATH`` holds thousands of files). Default: listed now.

    Returns:
        A sentence naming the file at fault, or None. The index is stale when a file it
        lists is gone, or when for some scope and type cifbuild would now choose another
        issue for the index's OBSVDATE: a higher issue valid at that date, a type it did
        not list, or a CCF file whose header cannot say (named in the sentence). An index
        without OBSVDATE falls back to "any higher issue in the folders makes it stale".
    """
    folders = [Path(p) for p in ccfpaths]
    if not cif.is_file():
        return f"{cif} is missing"
    try:
        listed, header = _read_calindex(cif)
    except OSError as exc:
        return f"{cif} is unreadable: {exc}"
    for _scope, _type, _issue, fname in listed:
        path = Path(fname)
        candidates = [path] if path.is_absolute() else [f / fname for f in folders]
        if not any(c.is_file() for c in candidates):
            return f"{cif} lists {fname}, which no longer exists"
    obsdate = parse_ccf_date(header["OBSVDATE"])
    if analysis_now:
        analdate: datetime | None = datetime.now(timezone.utc).replace(tzinfo=None)
    else:
        analdate = parse_ccf_date(header["ANALDATE"])
        if analdate is None:
            return None
    have = {(s, t): i for s, t, i, _ in listed}
    if available is None:
        available = available_ccfs(folders)
    if obsdate is None:
        if not analysis_now:
            return None
        for key, issues in sorted(available.items()):
            issue = max(issues)
            if key not in have or issue > have[key]:
                return (f"{cif} has no OBSVDATE, so validity dates cannot be checked: it predates "
                        f"{issues[issue].name} in SAS_CCFPATH (newer calibration)")
        return None
    when = f"observation date {_iso(obsdate)}"
    for key in sorted(set(available) | set(have)):
        issues = available.get(key, {})
        mine = have.get(key)
        chosen = _select(issues, obsdate, analdate)
        if chosen is None:
            if mine is not None and mine in issues:
                return (f"{cif} lists {issues[mine].name}, which is not valid for the {when} "
                        f"(no issue of {key[0]}_{key[1]} in SAS_CCFPATH is)")
            continue  # nothing applicable in the folders (the listed file lives elsewhere)
        issue, path, problem = chosen
        if issue == mine:
            continue
        if problem is not None:
            return (f"{cif} may predate {path}: {problem}, so it is taken as possibly valid for "
                    f"the {when}")
        if mine is None:
            return f"{cif} predates {path.name} in SAS_CCFPATH (calibration valid for the {when})"
        if issue > mine:
            return f"{cif} predates {path.name} in SAS_CCFPATH (newer calibration valid for the {when})"
        return f"{cif} lists issue {mine} of {key[0]}_{key[1]}, but cifbuild would now choose {path.name}"
    return None
