"""Stale calibration index: judged as cifbuild chooses, per validity window, not by the
highest issue on disk (daxa_xmm.sas.calindex)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.sas.calindex import available_ccfs, calindex_dates, ccf_attributes, ccf_stale_reason, listed_ccfs

ADU = "EMOS1_ADUCONV"
#: The real validity windows of the sample's EMOS1_ADUCONV issues (0079 ends when 0082 starts).
V79, V82 = "2003-11-09T18:00:01", "2005-01-21T18:00:00"
OBS_2004, OBS_2006 = "2004-06-17T10:38:28", "2006-03-01T00:00:00"
ANAL_2018 = "2018-07-27T17:50:42"


def write_ccf(folder: Path, name: str, **keys: str) -> Path:
    """A small FITS calibration file with the given primary-header keywords."""
    hdr = fits.Header()
    for k, v in keys.items():
        hdr[k] = v
    path = folder / name
    fits.PrimaryHDU(header=hdr).writeto(path, overwrite=True)
    return path


def write_cif(path: Path, ccfdir: Path, names: list[str], obsvdate: str | None = OBS_2004,
              analdate: str | None = ANAL_2018) -> Path:
    """A calibration index listing ``names`` (SCOPE_TYPE_ISSUE.CCF) in ``ccfdir``."""
    parts = [n[: -len(".CCF")].rsplit("_", 2) for n in names]
    cols = [
        fits.Column("SCOPE", "6A", array=np.array([p[0] for p in parts])),
        fits.Column("TYPEID", "32A", array=np.array([p[1] for p in parts])),
        fits.Column("ISSUE", "I", array=np.array([int(p[2]) for p in parts], dtype=np.int16)),
        fits.Column("FNAME", "256A", array=np.array([str(ccfdir / n) for n in names])),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="CALINDEX")
    if obsvdate is not None:
        table.header["OBSVDATE"] = obsvdate
    if analdate is not None:
        table.header["ANALDATE"] = analdate
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return path


@pytest.fixture
def ccfdir(tmp_path: Path) -> Path:
    """EMOS1_ADUCONV 0079 valid from 2003-11-09 and 0082 from 2005-01-21, plus one other type."""
    d = tmp_path / "ccf"
    d.mkdir()
    write_ccf(d, f"{ADU}_0079.CCF", VALDATE=V79, SUBDATE="2012-02-17T06:00:02")
    write_ccf(d, f"{ADU}_0082.CCF", VALDATE=V82, SUBDATE="2012-02-17T06:00:02")
    write_ccf(d, "XRT1_XPSF_0017.CCF", VALDATE="2000-01-01T00:00:00")
    return d


def _reason(tmp_path: Path, ccfdir: Path, listed_issue: int, obs: str | None = OBS_2004, **kw: bool) -> str | None:
    cif = write_cif(tmp_path / "ccf.cif", ccfdir, [f"{ADU}_{listed_issue:04d}.CCF", "XRT1_XPSF_0017.CCF"], obs)
    return ccf_stale_reason(cif, [ccfdir], **kw)


@pytest.mark.parametrize(
    ("obs", "listed", "stale_naming"),
    [
        (OBS_2004, 79, None),  # 0082 is newer but starts after the observation: not stale
        (OBS_2006, 79, f"{ADU}_0082.CCF"),  # 0082 applies to a 2006 observation
        (OBS_2006, 82, None),
        ("2003-11-09T18:00:01", 79, None),  # VALDATE <= observation date, inclusive
    ],
)
def test_validity_window_decides(tmp_path: Path, ccfdir: Path, obs: str, listed: int, stale_naming: str | None) -> None:
    reason = _reason(tmp_path, ccfdir, listed, obs)
    if stale_naming is None:
        assert reason is None
    else:
        assert reason is not None and stale_naming in reason and "predates" in reason


def test_a_new_issue_valid_at_the_observation_date_makes_it_stale(tmp_path: Path, ccfdir: Path) -> None:
    write_ccf(ccfdir, f"{ADU}_0080.CCF", VALDATE=V79)
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and f"{ADU}_0080.CCF" in reason


@pytest.mark.parametrize(
    ("evaldate", "stale"),
    [
        ("2004-01-01T00:00:00", False),  # its validity ended before the observation: ignored
        ("2004-12-31T00:00:00", True),  # still valid at the observation date
    ],
)
def test_evaldate_window(tmp_path: Path, ccfdir: Path, evaldate: str, stale: bool) -> None:
    write_ccf(ccfdir, f"{ADU}_0080.CCF", VALDATE=V79, EVALDATE=evaldate)
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is None if not stale else f"{ADU}_0080.CCF" in reason, reason


@pytest.mark.parametrize(
    ("subdate", "analysis_now", "stale"),
    [
        ("2020-05-05T00:00:00", False, False),  # submitted after the fixed ANALDATE: ignored
        ("2020-05-05T00:00:00", True, True),  # analysisdate=now: it counts
        ("2015-05-05T00:00:00", False, True),  # submitted before the fixed ANALDATE
    ],
)
def test_subdate_against_the_analysis_date(tmp_path: Path, ccfdir: Path, subdate: str, analysis_now: bool,
                                           stale: bool) -> None:
    write_ccf(ccfdir, f"{ADU}_0080.CCF", VALDATE=V79, SUBDATE=subdate)
    reason = _reason(tmp_path, ccfdir, 79, analysis_now=analysis_now)
    assert reason is None if not stale else f"{ADU}_0080.CCF" in reason, reason


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "no VALDATE"),  # a FITS header without VALDATE
        (b"x", "header unreadable"),  # not FITS at all
    ],
)
def test_a_file_whose_validity_is_unknown_is_named(tmp_path: Path, ccfdir: Path, content: bytes | None,
                                                   why: str) -> None:
    path = ccfdir / f"{ADU}_0080.CCF"
    if content is None:
        write_ccf(ccfdir, path.name, DATE="2020-01-01T00:00:00")
    else:
        path.write_bytes(content)
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and path.name in reason and why in reason, reason


def test_an_unknown_file_below_the_listed_issue_does_not_matter(tmp_path: Path, ccfdir: Path) -> None:
    (ccfdir / f"{ADU}_0078.CCF").write_bytes(b"x")
    assert _reason(tmp_path, ccfdir, 79) is None


def test_a_type_the_index_lacks(tmp_path: Path, ccfdir: Path) -> None:
    write_ccf(ccfdir, "EPN_QUANTUMEF_0019.CCF", VALDATE="2010-01-01T00:00:00")
    assert _reason(tmp_path, ccfdir, 79) is None  # valid only from 2010: cifbuild would not list it
    write_ccf(ccfdir, "EPN_QUANTUMEF_0018.CCF", VALDATE="2000-01-01T00:00:00")
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and "EPN_QUANTUMEF_0018.CCF" in reason


def test_listed_file_gone_or_no_longer_valid(tmp_path: Path, ccfdir: Path) -> None:
    (ccfdir / f"{ADU}_0079.CCF").unlink()
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and f"{ADU}_0079.CCF, which no longer exists" in reason
    write_ccf(ccfdir, f"{ADU}_0079.CCF", VALDATE="2005-01-01T00:00:00")  # re-issued header: not valid in 2004
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and "not valid for the observation date" in reason


@pytest.mark.parametrize(
    ("analysis_now", "stale"),
    [(True, True), (False, False)],
)
def test_without_obsvdate_any_higher_issue_counts(tmp_path: Path, ccfdir: Path, analysis_now: bool,
                                                  stale: bool) -> None:
    reason = _reason(tmp_path, ccfdir, 79, obs=None, analysis_now=analysis_now)
    if stale:
        assert reason is not None and "no OBSVDATE" in reason and f"{ADU}_0082.CCF" in reason
    else:
        assert reason is None


def test_headers_are_read_once_per_file_version(tmp_path: Path, ccfdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = fits.getheader

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fits, "getheader", counting)
    path = write_ccf(ccfdir, f"{ADU}_0090.CCF", VALDATE="2030-01-01T00:00:00")
    for _ in range(3):
        assert _reason(tmp_path, ccfdir, 79) is None
    assert calls.count(str(path)) == 1
    write_ccf(ccfdir, path.name, VALDATE=V79, SUBDATE="2001-01-01T00:00:00")  # rewritten: read again
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    reason = _reason(tmp_path, ccfdir, 79)
    assert reason is not None and path.name in reason
    assert calls.count(str(path)) == 2


def test_attributes_and_available_issues(ccfdir: Path) -> None:
    a = ccf_attributes(ccfdir / f"{ADU}_0079.CCF")
    assert (a.valdate, a.evaldate, a.problem) == (datetime(2003, 11, 9, 18, 0, 1), None, None)
    assert a.subdate == datetime(2012, 2, 17, 6, 0, 2)
    found = available_ccfs([ccfdir, ccfdir / "absent"])
    assert found[("EMOS1", "ADUCONV")] == {79: ccfdir / f"{ADU}_0079.CCF", 82: ccfdir / f"{ADU}_0082.CCF"}


def test_the_real_sample_index_is_read(xmm_samples: Path) -> None:
    cif = xmm_samples / "ccf" / "0201903501_ccf.cif"
    if not cif.is_file():
        pytest.skip(f"{cif} is not in the samples folder")
    obs, anal = calindex_dates(cif)
    assert obs == datetime(2004, 6, 17, 10, 38, 28) and anal == datetime(2018, 7, 27, 17, 50, 42)
    assert ("EMOS1", "ADUCONV", 79) in {(s, t, i) for s, t, i, _ in listed_ccfs(cif)}


def test_an_index_rewritten_in_place_is_read_again(tmp_path: Path, ccfdir: Path) -> None:
    """The index is read once per file version (path, mtime, size), never once per path: a
    cifbuild that rewrites it must be seen, even when the new file has the same size."""
    cif = write_cif(tmp_path / "ccf.cif", ccfdir, [f"{ADU}_0079.CCF"])
    assert [issue for _, _, issue, _ in listed_ccfs(cif)] == [79]
    stamp = os.stat(cif).st_mtime_ns
    write_cif(cif, ccfdir, [f"{ADU}_0082.CCF"])  # same size
    os.utime(cif, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))
    assert [issue for _, _, issue, _ in listed_ccfs(cif)] == [82]


def test_a_listing_made_once_decides_as_a_fresh_one(tmp_path: Path, ccfdir: Path) -> None:
    # the plan-first check lists SAS_CCFPATH once for many observations (available=)
    cif = write_cif(tmp_path / "ccf.cif", ccfdir, [f"{ADU}_0079.CCF", "XRT1_XPSF_0017.CCF"], OBS_2006)
    listing = available_ccfs([ccfdir])
    fresh = ccf_stale_reason(cif, [ccfdir])
    assert fresh is not None and f"{ADU}_0082.CCF" in fresh
    assert ccf_stale_reason(cif, [ccfdir], available=listing) == fresh
    # the listing is what the folders held when it was made: 0082 gone since, it still
    # counts (unreadable now, so "possibly valid": stale, the safe side)
    (ccfdir / f"{ADU}_0082.CCF").unlink()
    assert ccf_stale_reason(cif, [ccfdir]) is None
    late = ccf_stale_reason(cif, [ccfdir], available=listing)
    assert late is not None and f"{ADU}_0082.CCF: cannot be read" in late
