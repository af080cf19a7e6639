"""Tests of daxa_xmm.sas.emanom_log: state parsing, acceptable states, the SAS-version gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daxa_xmm.errors import EmanomParseError, SasVersionError
from daxa_xmm.sas.emanom_log import VALID_STATES, emanom_supported, keep_ccds, parse_emanom_out, parse_emanom_states
from daxa_xmm.sas.version import SasVersion

LOG = """\
emanom:- Executing (routine): emanom eventfile=P0201903501M1S001MIEVLI0000.FIT keepcorner=no
Anomalous state check for MOS1 exposure S001
CCD: 1  Hardness: 0.402  Counts in corner: 2101  Status: G
CCD: 2  Hardness: 0.512  Counts in corner: 1234  Status: G
CCD: 3 Hardness: 0.620 Counts in corner: 988 Status: I
CCD:4   Status:B  (bad below 1 keV)
CCD: 5  Hardness: 0.511  Counts in corner: 1010  Status: U
CCD: 6  Hardness: -1  Counts in corner: 0  Status: O
   CCD: 7   Status: G
Status summary: done
"""


@pytest.fixture
def log(tmp_path: Path) -> Path:
    p = tmp_path / "mos1S001-anom.log"
    p.write_text(LOG)
    return p


def test_states(log: Path) -> None:
    assert parse_emanom_states(log) == {1: "G", 2: "G", 3: "I", 4: "B", 5: "U", 6: "O", 7: "G"}


def test_default_keeps_g_i_u_only(log: Path) -> None:
    # DAXA kept every CCD (B and O included): the bad and off CCDs 4 and 6 must go
    assert parse_emanom_out(log) == [1, 2, 3, 5, 7]


@pytest.mark.parametrize(
    ("states", "ccds"),
    [
        (["G"], [1, 2, 7]),
        ("G", [1, 2, 7]),
        (("G", "I"), [1, 2, 3, 7]),
        (["b", "o"], [4, 6]),
        (list(VALID_STATES), [1, 2, 3, 4, 5, 6, 7]),
        ({"U"}, [5]),
    ],
)
def test_acceptable_states(log: Path, states, ccds: list[int]) -> None:
    assert parse_emanom_out(log, acceptable_states=states) == ccds


@pytest.mark.parametrize("states", [["G", "X"], "GI", ["good"], [], [1]])
def test_invalid_acceptable_states(log: Path, states) -> None:
    with pytest.raises(EmanomParseError, match="acceptable_states"):
        parse_emanom_out(log, acceptable_states=states)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EmanomParseError, match=r"nope-anom\.log: emanom log not found"):
        parse_emanom_out(tmp_path / "nope-anom.log")


def test_unreadable(tmp_path: Path) -> None:
    with pytest.raises(EmanomParseError, match="cannot read emanom log"):
        parse_emanom_states(tmp_path)


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daxa_xmm.sas.emanom_log as emanom

    monkeypatch.setattr(emanom, "MAX_LOG_BYTES", 5)
    p = tmp_path / "big.log"
    p.write_text(LOG)
    with pytest.raises(EmanomParseError, match="too large"):
        parse_emanom_states(p)


@pytest.mark.parametrize("text", ["", "emanom ran\nnothing to report\n", "CCD list follows\nStatus: G\n", b"\x00\xff\xfe"])
def test_no_ccd_lines(tmp_path: Path, text: str | bytes) -> None:
    p = tmp_path / "x.log"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(EmanomParseError, match=r"x\.log: no 'CCD: <n> \.\.\. Status: <code>' line"):
        parse_emanom_out(p)


def test_unknown_state(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_text("CCD: 1 Status: G\nCCD: 2 Status: Z\n")
    with pytest.raises(EmanomParseError, match=r"x\.log, line 2: CCD 2 has unknown state 'Z'"):
        parse_emanom_out(p)


def test_conflicting_states(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    p.write_text("CCD: 1 Status: G\nCCD: 1 Status: G\nCCD: 1 Status: B\n")
    with pytest.raises(EmanomParseError, match="line 3: CCD 1 reported as G and as B"):
        parse_emanom_states(p)


def test_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_emanom_out(tmp_path / "missing.log")


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("22.1.0-a8f2c2afa-20250304", True),
        ("xmmsas_20211130_0941-20.0.0", True),
        ("19.0.0", True),
        ("18.0.0", False),
        ("xmmsas_20141104_1833-14.0.0", False),
        (SasVersion(19, 1, 0), True),
        (SasVersion(18, 9, 9), False),
        ((19,), True),
        ((18, 0), False),
    ],
)
def test_emanom_supported(version, supported: bool) -> None:
    assert emanom_supported(version) is supported


def test_emanom_supported_rejects_garbage() -> None:
    with pytest.raises(SasVersionError):
        emanom_supported("no version here")
    with pytest.raises(SasVersionError):
        emanom_supported(19.0)  # type: ignore[arg-type]


_LINES = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda n, s, junk: f"CCD: {n} {junk} Status: {s}",
        st.integers(min_value=0, max_value=99),
        st.text(alphabet="GIBOUXgz", min_size=1, max_size=3),
        st.text(max_size=15),
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(_LINES, max_size=12), st.lists(st.sampled_from(VALID_STATES), min_size=1, max_size=5))
def test_random_text_only_raises_emanom_errors(tmp_path: Path, lines: list[str], states: list[str]) -> None:
    p = tmp_path / "fuzz.log"
    p.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    try:
        result = parse_emanom_out(p, acceptable_states=states)
    except EmanomParseError:
        return
    assert isinstance(result, list) and all(isinstance(c, int) for c in result)
    assert result == sorted(set(result))
    assert set(result) <= set(parse_emanom_states(p))


def test_keep_ccds_keeps_what_emanom_did_not_judge(tmp_path: Path) -> None:
    # emanom's algorithm page: chips 2-7 only ("chip 1 has no corner data")
    log = tmp_path / "mos1S001-anom.log"
    log.write_text("".join(f"CCD: {c}  Hardness ratio: 0.5  Status: {s}\n" for c, s in zip(range(2, 8), "GBGOIU", strict=True)))
    assert keep_ccds(log, [1, 2, 3, 4, 5, 7]) == [1, 2, 4, 7]  # B (3) and O (5) dropped; 6 not in the exposure
    assert keep_ccds(log, range(1, 8), ("G",)) == [1, 2, 4]
    assert parse_emanom_out(log) == [2, 4, 6, 7]  # DAXA's parser: the log's CCDs only
