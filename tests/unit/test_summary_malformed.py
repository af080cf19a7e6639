"""Tests of daxa_xmm.odf.summary on malformed input: each fault is a SummaryParseError naming the
file and line, never another exception (examples, then hypothesis properties)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daxa_xmm.errors import SummaryParseError
from daxa_xmm.odf.summary import parse_odf_sum, read_observation_record, read_odf_summary
from tests.summary_writer import Exp, Inst, summary_text, typical_instruments, write_summary

# --------------------------------------------------------------------------- malformed input


def _write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "bad_SUM.SAS"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _lines_of(text: str) -> list[str]:
    return text.split("\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="nope.SAS: file not found"):
        read_odf_summary(tmp_path / "nope.SAS")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="cannot read"):
        read_odf_summary(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty(tmp_path: Path, text: str) -> None:
    with pytest.raises(SummaryParseError, match="file is empty"):
        read_odf_summary(_write(tmp_path, text))


def test_binary_garbage(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line 2: binary content"):
        read_odf_summary(_write(tmp_path, b"SIMPLE  =   T\n\x00\x01\x02\xff"))


def test_control_characters(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match=r"line 1: control characters"):
        read_odf_summary(_write(tmp_path, b"\x1b[31mOBSERVATION\n"))


def test_invalid_utf8_is_not_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError):
        read_odf_summary(_write(tmp_path, b"\xff\xfe\xfd garbage\n"))


def test_missing_observation_record(tmp_path: Path) -> None:
    p = _write(tmp_path, summary_text(typical_instruments(), with_observation=False))
    with pytest.raises(SummaryParseError, match="no OBSERVATION record"):
        read_odf_summary(p)
    with pytest.raises(SummaryParseError, match="no OBSERVATION record"):
        read_observation_record(p)


def test_obsid_mismatch(tmp_path: Path) -> None:
    written = write_summary(tmp_path / "0828_0201903501_SCX00000SUM.SAS")
    with pytest.raises(SummaryParseError, match=r"line \d+: summary is for ObsID 0201903501, expected 0000000001"):
        read_odf_summary(written, obs_id="0000000001")


def test_stated_exposure_count_differs(tmp_path: Path) -> None:
    p = _write(tmp_path, summary_text([Inst("M1", [Exp("001")]), Inst("PN", [Exp("003")], num_exp=2)]))
    with pytest.raises(SummaryParseError, match=r"line \d+: instrument PN states 2 exposures but 1 EXPOSURE"):
        read_odf_summary(p)


def test_stated_file_count_differs(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="FILES record states 99 files"):
        read_odf_summary(_write(tmp_path, summary_text(typical_instruments(), stated_files=99)))


def test_truncated_mid_exposure_configuration(tmp_path: Path) -> None:
    lines = _lines_of(summary_text(typical_instruments()))
    cut = next(i for i, ln in enumerate(lines) if ln.startswith("DATA_MODE_5 = OffsetData"))
    p = _write(tmp_path, "\n".join(lines[:cut]))
    with pytest.raises(SummaryParseError, match=r"line \d+: CONFIGURATION record \(line \d+\) states"):
        read_odf_summary(p)


def test_truncated_mid_exposure_record(tmp_path: Path) -> None:
    lines = _lines_of(summary_text([Inst("PN", [Exp("003")])]))
    cut = next(i for i, ln in enumerate(lines) if ln.endswith("/ Exposure Type"))
    with pytest.raises(SummaryParseError, match="EXPOSURE record .* has no Exposure Type line"):
        read_odf_summary(_write(tmp_path, "\n".join(lines[:cut])))


def test_truncated_mid_data_quality(tmp_path: Path) -> None:
    text = summary_text(typical_instruments()).rstrip()
    text = text[: text.rindex("S / Scheduled flag")]
    with pytest.raises(SummaryParseError, match="DATA QUALITY record does not end"):
        read_odf_summary(_write(tmp_path, text))


def test_truncated_after_instrument_header(tmp_path: Path) -> None:
    lines = _lines_of(summary_text(typical_instruments()))
    cut = max(i for i, ln in enumerate(lines) if ln == "INSTRUMENT") + 4
    with pytest.raises(SummaryParseError, match="instrument OM states 1 exposures but 0"):
        read_odf_summary(_write(tmp_path, "\n".join(lines[:cut])))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("0201903501 / Observation Identifier", "020190350 / Observation Identifier", "ObsID must be 10 digits"),
        ("0828 / Revolution Identifier", "828 / Revolution Identifier", "revolution must be 4 digits"),
        ("2004-06-17T10:38:28.000 / Observation Start", "yesterday / Observation Start", "not a time"),
        ("Y / Is this instrument active?", "maybe / Is this instrument active?", "must be Y or N"),
        ("1 / Number of exposures", "one / Number of exposures", "must be a whole number"),
        ("001 / Exposure Identifier [also S001]", "001 / Exposure Identifier [also S002]", "disagrees with"),
        ("001 / Exposure Identifier", "0x1 / Exposure Identifier", "expected 'NNN / Exposure Identifier"),
        ("Y / Is this a scheduled exposure?", "yes / Is this a scheduled exposure?", "must be Y or N"),
        ("SCIENCE / Exposure Type", " / Exposure Type", "empty Exposure Type"),
        ("FILTER = Thin1 // Filter", "FILTER Thin1", "expected 'KEY = VALUE'"),
        ("FRAME_TIME_PARAMETER = 3", "MODE = 3", "MODE appears twice"),
        ("INSTRUMENT\nM1\n", "INSTRUMENT\nM1 camera\n", "not an instrument id"),
        ("INSTRUMENT\nM1\n", "INSTRUMENT\n", "INSTRUMENT record needs 3 lines"),
        ("5\nODF_VERSION", "five\nODF_VERSION", "number of configuration parameters"),
        ("PATH /data", "STRAY LINE\nPATH /data", "line outside any record"),
    ],
)
def test_malformed_fields(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = summary_text([Inst("M1", [Exp("001")])])
    assert old in text
    with pytest.raises(SummaryParseError, match=re.escape(message)):
        read_odf_summary(_write(tmp_path, text.replace(old, new, 1)))


def test_duplicates(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="PN S003 appears twice"):
        read_odf_summary(_write(tmp_path, summary_text([Inst("PN", [Exp("003"), Exp("003")])])))
    with pytest.raises(SummaryParseError, match="second INSTRUMENT record for PN"):
        read_odf_summary(_write(tmp_path, summary_text([Inst("PN", [Exp("003")]), Inst("PN", [Exp("004")])])))
    text = summary_text([Inst("PN", [Exp("003")])])
    obs = text[text.index("OBSERVATION") : text.index("// Number of files")]
    with pytest.raises(SummaryParseError, match="second OBSERVATION record"):
        read_odf_summary(_write(tmp_path, text.replace("// Number of files", obs + "// Number of files", 1)))


def test_exposure_before_instrument(tmp_path: Path) -> None:
    record = "INSTRUMENT\nPN\nY / Is this instrument active?\n1 / Number of exposures for this instrument\n"
    text = summary_text([Inst("PN", [Exp("003")])]).replace(record, "")
    with pytest.raises(SummaryParseError, match="EXPOSURE record before any INSTRUMENT"):
        read_odf_summary(_write(tmp_path, text))


def test_configuration_without_exposure(tmp_path: Path) -> None:
    text = summary_text([Inst("PN", [Exp("003")])])
    block = text[text.index("CONFIGURATION EPIC PN") : text.index("// The PROPOSAL")]
    text = text.replace("// The PROPOSAL", block + "// The PROPOSAL", 1)
    with pytest.raises(SummaryParseError, match="CONFIGURATION record that follows no EXPOSURE"):
        read_odf_summary(_write(tmp_path, text))


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daxa_xmm.odf.summary_records as summary_records

    monkeypatch.setattr(summary_records, "MAX_SUMMARY_BYTES", 10)
    with pytest.raises(SummaryParseError, match="too large"):
        read_odf_summary(_write(tmp_path, "OBSERVATION\n0201903501 / Observation Identifier\n"))


def test_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_odf_sum(tmp_path / "missing.SAS")


# --------------------------------------------------------------------------- properties

_VALID = summary_text(typical_instruments())
_VALID_LINES = _lines_of(_VALID)


def _parse_text(tmp_path: Path, text: str | bytes) -> None:
    """Parse; only SummaryParseError may escape. Returns normally on success."""
    p = _write(tmp_path, text)
    try:
        read_odf_summary(p)
    except SummaryParseError as exc:
        assert str(p) in str(exc)
    try:
        read_observation_record(p)
    except SummaryParseError:
        pass


_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    _parse_text(tmp_path, data)


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID_LINES)))
def test_truncation_at_any_line(tmp_path: Path, n: int) -> None:
    _parse_text(tmp_path, "\n".join(_VALID_LINES[:n]))


@_SETTINGS
@given(st.lists(st.integers(min_value=0, max_value=len(_VALID_LINES) - 1), min_size=1, max_size=4, unique=True))
def test_line_deletion(tmp_path: Path, drop: list[int]) -> None:
    _parse_text(tmp_path, "\n".join(ln for i, ln in enumerate(_VALID_LINES) if i not in drop))


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID_LINES) - 1), st.text(max_size=40))
def test_line_replacement(tmp_path: Path, index: int, junk: str) -> None:
    lines = list(_VALID_LINES)
    lines[index] = junk
    _parse_text(tmp_path, "\n".join(lines))


@_SETTINGS
@given(st.integers(min_value=0, max_value=len(_VALID)))
def test_truncation_at_any_byte(tmp_path: Path, n: int) -> None:
    _parse_text(tmp_path, _VALID.encode()[:n])


def test_every_single_line_deletion_is_detected_or_harmless(tmp_path: Path) -> None:
    """Deleting any one line of a content record either fails cleanly or changes nothing read."""
    def read(text: str) -> tuple:
        s = read_odf_summary(_write(tmp_path, text))
        return s.to_daxa_dict(), s.files, s.observation

    good = read(_VALID)
    for i in range(len(_VALID_LINES)):
        text = "\n".join(ln for j, ln in enumerate(_VALID_LINES) if j != i)
        try:
            got = read(text)
        except SummaryParseError:
            continue
        line = _VALID_LINES[i].strip()
        # lines we do not interpret may go unnoticed; anything else must be caught
        harmless = (
            not line
            or line.startswith("//")
            or "Commanded Exposure" in line
            or "Proposal Exposure" in line
            or "Time" in line
            or "PATH" in line
            or "Number of packets" in line
            or "Telemetry drops" in line
            or "Target Name" in line
            or "priority" in line
            or "Instrument Id" in line
            or "Exposure Id" in line
            or line == "PERSON"
            or "PERSON" in line
            or line in ("PROPOSAL", "DATA QUALITY")
        )
        assert harmless, f"deleting line {i + 1} {line!r} went unnoticed"
        assert got == good, f"deleting line {i + 1} {line!r} changed the result"


def test_no_instruments(tmp_path: Path) -> None:
    with pytest.raises(SummaryParseError, match="no INSTRUMENT record"):
        read_odf_summary(_write(tmp_path, summary_text([])))
