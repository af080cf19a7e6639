"""The stand-in's evselect selection language: table-driven, real headers, and fuzzed."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from daxa_xmm.errors import FilterExpressionError
from daxa_xmm.standin.expression import ExpressionError, evaluate, expand_attributes, select

COLS = {
    "PI": np.array([100, 500, 1000, 2000, 2001], dtype=np.int16),
    "FLAG": np.array([0, 1, 0, 0x2000, 0], dtype=np.int32),
    "PATTERN": np.array([0, 4, 12, 13, 0], dtype=np.int16),
    "CCDNR": np.array([1, 2, 3, 4, 5], dtype=np.uint8),
    "TIME": np.array([10.0, 20.0, 30.0, 40.0, 50.0]),
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("true", [1, 1, 1, 1, 1]),
        ("false", [0, 0, 0, 0, 0]),
        ("PI in [500:2000]", [0, 1, 1, 1, 0]),
        ("PI in (500:2000]", [0, 0, 1, 1, 0]),
        ("PI in [500:2000)", [0, 1, 1, 0, 0]),
        ("PI in (500:2000)", [0, 0, 1, 0, 0]),
        ("PI in [:500]", [1, 1, 0, 0, 0]),
        ("PI in [2000:]", [0, 0, 0, 1, 1]),
        ("PI in :-10,[1:3),1000,2000:", [0, 0, 1, 1, 1]),
        ("CCDNR in 1,2,4", [1, 1, 0, 1, 0]),
        ("CCDNR in [1:2],5", [1, 1, 0, 0, 1]),
        ("PATTERN <= 12 && FLAG == 0", [1, 0, 1, 0, 1]),
        ("PATTERN .le. 12 .and. FLAG .eq. 0", [1, 0, 1, 0, 1]),
        ("FLAG.eq.0", [1, 0, 1, 0, 1]),
        ("!(FLAG == 0) || PI > 2000", [0, 1, 0, 1, 1]),
        (".not. (PI .lt. 1000) .or. PI .ge. 2001", [0, 0, 1, 1, 1]),
        ("PI != 500 && PI .ne. 1000", [1, 0, 0, 1, 1]),
        ("(FLAG & 0x766ba000) == 0", [1, 1, 1, 0, 1]),
        ("FLAG & b1 != 0", [0, 1, 0, 0, 0]),
        ("PI * 2 - 1 >= 3999", [0, 0, 0, 1, 1]),
        ("PI / 1000 > 1.5", [0, 0, 0, 1, 1]),
        ("PI*1000 > 1000000", [0, 0, 0, 1, 1]),
        ("#ROW > 3", [0, 0, 0, 1, 1]),
        ("TIME > .5e2 - 15", [0, 0, 0, 1, 1]),
        ("circle(1000, 0, 501, PI, FLAG)", [0, 1, 1, 0, 0]),
        ("(PI, FLAG) in circle(1000, 0, 501)", [0, 1, 1, 0, 0]),
    ],
)
def test_expressions(expr: str, expected: list[int]) -> None:
    assert evaluate(expr, COLS).astype(int).tolist() == expected


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ("PI in [", "SyntaxError"),
        ("PI >", "SyntaxError"),
        ("PI &&& 2", "SyntaxError"),
        ("", "SyntaxError"),
        ("((PI > 1)", "SyntaxError"),
        ("PI > 1 PI", "SyntaxError"),
        ("PI @ 2", "SyntaxError"),
        ("nofunc(PI) > 1", "SyntaxError"),
        ("ENERGY > 1", "UnknownColumn"),
        ("PI + 1", "TypeMismatch"),
        ("PI && true", "TypeMismatch"),
        ("TIME & 1 == 0", "TypeMismatch"),
        ("gti(missing.fits, TIME)", "GtiTable"),
    ],
)
def test_errors(expr: str, code: str, tmp_path) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, COLS, base_dir=tmp_path)
    assert info.value.code == code
    assert isinstance(info.value, FilterExpressionError)


def _gti_file(path, intervals, extname="STDGTI01"):
    arr = np.array(intervals, dtype=float)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name="START", format="D", array=arr[:, 0]), fits.Column(name="STOP", format="D", array=arr[:, 1])],
        name=extname,
    )
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)


@pytest.mark.parametrize("extname", ["STDGTI01", "GTI", "GTI00006"])
def test_gti_is_half_open_and_overlaps_merge(tmp_path, extname: str) -> None:
    _gti_file(tmp_path / "g.fits", [[15.0, 30.0], [5.0, 12.0], [45.0, 60.0], [46.0, 47.0]], extname)
    for expr in ("gti(g.fits,TIME)", "GTI(g.fits, TIME)", "TIME in gti(g.fits)", f"gti(g.fits[{extname}],TIME)"):
        assert evaluate(expr, COLS, base_dir=tmp_path).astype(int).tolist() == [1, 1, 0, 0, 1]


def test_attribute_macros_from_synthetic_header() -> None:
    header = fits.Header()
    header["XMMEA_EM"] = "(FLAG & 0x766ba000) == 0"
    header["GOOD"] = "#XMMEA_EM && PATTERN <= 12"
    header["LOW"] = 500
    mask, text = select("#GOOD && PI >= #LOW", COLS, header)
    assert text == "(FLAG & 0x766ba000) == 0 && PATTERN <= 12 && PI >= 500"
    assert mask.astype(int).tolist() == [0, 1, 1, 0, 1]
    with pytest.raises(ExpressionError) as info:
        expand_attributes("#NOPE", header)
    assert info.value.code == "UnknownAttribute"
    header["LOOP"] = "#LOOP"
    with pytest.raises(ExpressionError):
        expand_attributes("#LOOP", header)


def test_attribute_macros_on_real_event_list(xmm_samples) -> None:
    path = xmm_samples / "events" / "0201903501_mos1_S001_clean_evts.fits"
    with fits.open(path, memmap=False) as hdul:
        data, header = hdul["EVENTS"].data, hdul["EVENTS"].header
        mask, text = select("#XMMEA_EM && PI in [500:2000]", data, header)
        flag = np.asarray(data["FLAG"]).astype(np.int64)
        pi = np.asarray(data["PI"])
    assert text == "(FLAG & 0x766ba000) == 0 && PI in [500:2000]"
    expected = ((flag & 0x766BA000) == 0) & (pi >= 500) & (pi <= 2000)
    assert np.array_equal(mask, expected)
    assert 0 < mask.sum() < len(mask)


_atoms = st.sampled_from(["PI", "FLAG", "PATTERN", "NOPE", "1", "0x10", "2.5", "true", "#ROW", "b101", "-3", ""])
_ops = st.sampled_from(["&&", "||", "==", "!=", "<", ">=", "+", "-", "*", "/", "&", "|", ".and.", ".eq.", " in ", ",",
                        ":", "[", "]", "(", ")", "!", "**", "gti(", "circle("])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_atoms, _ops), max_size=14))
def test_fuzzed_token_soup_raises_only_expression_error(parts: list[str]) -> None:
    expr = " ".join(parts)
    try:
        out = evaluate(expr, COLS)
    except ExpressionError:
        return
    assert out.dtype == bool and out.shape == (5,)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_fuzzed_text_raises_only_expression_error(expr: str) -> None:
    try:
        evaluate(expr, COLS)
    except ExpressionError:
        pass
