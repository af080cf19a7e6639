"""filters: the expression validator and the cleaned_evt_lists expression builder."""

from __future__ import annotations

import astropy.units as u
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daxa_xmm.errors import ConfigError, FilterExpressionError
from daxa_xmm.sas.filters import MOS_DEFAULT, PN_DEFAULT, build_filter_expression, validate_expression

VALID = [
    PN_DEFAULT,
    MOS_DEFAULT,
    "PI in [500:2000]",
    "PI in (500:2000]",
    "PI in [500:2000)",
    "PI in (500:2000)",
    "PI in [:2000]",
    "PI in [500:]",
    "PI in [500:1000],[2000:3000)",
    "CCDNR in 1,2,4",
    "(PATTERN<=12)&&((FLAG & 0x766aa000)==0)",
    "!(CIRCLE(100,-200,17700,DETX,DETY)||BOX(-20,-17000,6500,500,0,DETX,DETY))",
    "#XMMEA_EM .and. (PATTERN .le. 12) .or. .not. (FLAG .ne. 0)",
    "gti(pnS003-gti.fits,TIME) && (PI in [500:2000])",
    "(PI in [500:2000])",
]


@pytest.mark.parametrize("expr", VALID)
def test_valid_expressions_pass_unchanged(expr: str) -> None:
    assert validate_expression(expr) == expr


INVALID = [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("PI in [500:2000", 6, "unclosed '['"),
    ("(PATTERN <= 4", 0, "unclosed '('"),
    ("PATTERN <= 4)", 12, "nothing to close"),
    ("(PATTERN <= 4]", 13, "closes '('"),
    ("PI > 5 (a:b]", 11, "closes '('"),  # a half-open range needs 'in'
    ("FLAG == 0; rm -rf /", 9, "';'"),
    ("FLAG == `id`", 8, "'`'"),
    ("FLAG == $HOME", 8, "'$'"),
    ("FLAG == 0\n&& PI > 3", 9, "'\\n'"),
    ("FLAG == 0 \\", 10, "'\\\\'"),
    ("{FLAG}", 0, "'{'"),
    ("NAME == 'abc", 8, "unterminated"),
    ('NAME == "abc', 8, "unterminated"),
    ("gti(my file.fits,TIME)", 4, "not a plain path"),
]


@pytest.mark.parametrize(("expr", "pos", "words"), INVALID)
def test_invalid_expressions_point_at_the_problem(expr: str, pos: int, words: str) -> None:
    with pytest.raises(FilterExpressionError) as info:
        validate_expression(expr)
    assert info.value.position == pos
    assert words in str(info.value)
    # the caret line sits under the offending position
    assert str(info.value).splitlines()[-1] == "  " + " " * pos + "^"


def test_non_string_is_refused() -> None:
    with pytest.raises(FilterExpressionError):
        validate_expression(None)  # type: ignore[arg-type]


BUILD = [
    (dict(inst="PN"), PN_DEFAULT),
    (dict(inst="M1"), MOS_DEFAULT),
    (dict(inst="M2", lo_en=0.5 * u.keV, hi_en=2 * u.keV), MOS_DEFAULT + " && (PI in [500:2000])"),
    (dict(inst="PN", lo_en="0.5 keV", hi_en="10 keV"), PN_DEFAULT + " && (PI in [500:10000])"),
    (dict(inst="PN", lo_en=300 * u.eV, hi_en=u.Quantity(1.5, "keV")), PN_DEFAULT + " && (PI in [300:1500])"),
    (dict(inst="PN", gti_file="/p/pnS003-gti.fits"), PN_DEFAULT + " && gti(/p/pnS003-gti.fits,TIME)"),
    (dict(inst="M1", accepted_ccds=[4, 1, 2]), MOS_DEFAULT + " && (CCDNR in 1,2,4)"),
    (dict(inst="PN", user_expr="PATTERN <= 0"), "PATTERN <= 0"),
    (dict(inst="PN", user_expr=["PATTERN <= 0", "FLAG == 0"]), "PATTERN <= 0 && FLAG == 0"),
    (dict(inst="PN", user_expr="A == 1 || B == 2", lo_en=1 * u.keV, hi_en=2 * u.keV), "(A == 1 || B == 2) && (PI in [1000:2000])"),
    (
        dict(inst="M1", lo_en=0.5 * u.keV, hi_en=2 * u.keV, gti_file="g.fits", accepted_ccds=(1, 3)),
        MOS_DEFAULT + " && (PI in [500:2000]) && gti(g.fits,TIME) && (CCDNR in 1,3)",
    ),
]


@pytest.mark.parametrize(("kwargs", "expected"), BUILD)
def test_build_filter_expression(kwargs: dict, expected: str) -> None:
    assert build_filter_expression(**kwargs) == expected


BUILD_ERRORS = [
    (dict(inst="R1"), "inst"),
    (dict(inst="PN", lo_en=0.5), "lo_en"),  # DAXA crashed on a bare float; we explain
    (dict(inst="PN", lo_en=0.5 * u.keV, hi_en=2.0), "hi_en"),
    (dict(inst="PN", lo_en=0.5 * u.s, hi_en=2 * u.keV), "lo_en"),
    (dict(inst="PN", lo_en="half a keV", hi_en=2 * u.keV), "lo_en"),
    (dict(inst="PN", lo_en=0.5 * u.keV), "both or neither"),
    (dict(inst="PN", lo_en=2 * u.keV, hi_en=0.5 * u.keV), "hi_en"),
    (dict(inst="PN", lo_en=2 * u.keV, hi_en=2 * u.keV), "hi_en"),
    (dict(inst="PN", accepted_ccds=[1]), "accepted_ccds"),
    (dict(inst="M1", accepted_ccds=[]), "accepted_ccds"),
    (dict(inst="M1", accepted_ccds=[8]), "accepted_ccds"),
    (dict(inst="PN", gti_file="a file.fits"), "gti_file"),
    (dict(inst="PN", gti_file="a;b.fits"), "gti_file"),
    (dict(inst="PN", user_expr=[]), "empty"),
    (dict(inst="PN", user_expr=5), "string"),
]


@pytest.mark.parametrize(("kwargs", "words"), BUILD_ERRORS)
def test_build_errors_name_the_argument(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        build_filter_expression(**kwargs)


def test_bad_user_expression_raises_filter_error() -> None:
    with pytest.raises(FilterExpressionError):
        build_filter_expression("PN", user_expr="(PATTERN <= 4")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("PI in[]():,&|!=<>#'\"; `$\n\\{}abcXYZ019._-+*/ \t~")), max_size=40))
def test_validator_raises_only_its_own_error_and_never_accepts_shell_syntax(expr: str) -> None:
    try:
        out = validate_expression(expr)
    except FilterExpressionError:
        return
    assert out == expr
    for bad in (";", "`", "$", "\n"):
        assert bad not in out


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_validator_on_arbitrary_unicode(expr: str) -> None:
    try:
        validate_expression(expr)
    except FilterExpressionError:
        pass


@pytest.mark.parametrize(
    ("expr", "position"),
    [("PATTERN <== 4", 10), ("PATTERN <= 4 &&", 15), ("PI in [500:2000] PATTERN", 17), ("&& FLAG == 0", 0)],
)
def test_grammar_errors_point_at_the_token(expr: str, position: int) -> None:
    with pytest.raises(FilterExpressionError) as info:
        validate_expression(expr)
    assert info.value.position == position


def test_region_shapes_are_valid_syntax() -> None:
    expr = "!(CIRCLE(100,-200,17700,DETX,DETY)||BOX(-20,-17000,6500,500,0,DETX,DETY))"
    assert validate_expression(expr) == expr


def test_single_quotes_are_refused_even_around_a_gti_file() -> None:
    # evselect refuses single-quoted strings (issue 12.5); the real SAS logs write
    # GTI(mos1S001-gti-2500-8500.fits,TIME), unquoted
    with pytest.raises(FilterExpressionError, match="single quotes"):
        validate_expression("gti('/data/x/pnS003-gti.fits',TIME)")
    assert validate_expression("gti(/data/x/pnS003-gti.fits,TIME)")
