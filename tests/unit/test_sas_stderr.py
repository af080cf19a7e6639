"""SAS stderr parsing, on the real espfilt log and on synthetic text covering the same cases."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import daxa_xmm.sas.stderr as sas_stderr
from daxa_xmm.sas.stderr import SasRecord, has_error, parse_sas_stderr

REAL_STDERR = "sas_logs/daxa_archives_nb_espfilt_0502671101PNS003_stderr.log"

# The real log's shape, written out: evselect warnings, a SummaryOfWarnings whose body is on
# an indented next line, espfilt's noCounts error, then the wrapping script's mv: lines.
SYNTHETIC = (
    "** evselect: warning (NoWCS), No WCS information available for image column DETX.\n"
    "** evselect: warning (SummaryOfWarnings), \n"
    "   warning NoWCS silently occurred 1 times\n"
    "** espfilt: error (noCounts), All histo counts are zero! Check your FOV Lightcurve!\n"
    "mv: rename pnS003-gti-2500-8500.fits to /x/gti.fits: No such file or directory\n"
    "mv: rename pnS003-hist-2500-8500.qdp to /x/hist.qdp: No such file or directory\n"
)


def test_real_espfilt_stderr(xmm_samples: Path) -> None:
    records = parse_sas_stderr((xmm_samples / REAL_STDERR).read_text())
    assert [(r.task, r.level, r.name) for r in records] == [
        ("evselect", "warning", "NoWCS"),
        ("evselect", "warning", "SummaryOfWarnings"),
        ("evselect", "warning", "NoWCS"),
        ("evselect", "warning", "SummaryOfWarnings"),
        ("espfilt", "error", "noCounts"),
    ]
    assert records[1].message == "warning NoWCS silently occurred 1 times"
    assert records[-1].message == "All histo counts are zero! Check your FOV Lightcurve!"
    assert has_error(records)


def test_real_pysas_output_qualified_task_and_flattened_indent(xmm_samples: Path) -> None:
    """A notebook capture indents every line equally; the summary body is still found."""
    text = (xmm_samples / "sas_logs/heasarc-tutorials_pySAS_pipeline_0903540101_sas22.1.0_outputs.txt").read_text()
    records = parse_sas_stderr(text)
    summaries = [r for r in records if r.name == "SummaryOfWarnings"]
    assert summaries and all(r.message == "warning NoExpoExt silently occurred 1 times" for r in summaries)
    assert SasRecord("backscale::arfgen", "warning", "zeroRenorm", "No flux was found within detector map") in records
    assert not has_error(records)
    # "eexpmap executed successfully!" and the CifEntry lines never join a record
    assert not any("executed successfully" in r.message or "CifEntry" in r.message for r in records)


def test_synthetic_same_cases() -> None:
    records = parse_sas_stderr(SYNTHETIC)
    assert records == [
        SasRecord("evselect", "warning", "NoWCS", "No WCS information available for image column DETX."),
        SasRecord("evselect", "warning", "SummaryOfWarnings", "warning NoWCS silently occurred 1 times"),
        SasRecord("espfilt", "error", "noCounts", "All histo counts are zero! Check your FOV Lightcurve!"),
    ]
    assert str(records[2]) == "** espfilt: error (noCounts), All histo counts are zero! Check your FOV Lightcurve!"


def test_wrapped_message_is_joined_with_one_space() -> None:
    text = (
        "** emchain: error (badCcd), CCD 6 of MOS1 is not available\n"
        "      since revolution 961; remove it from\n"
        "      the ccds parameter\n"
        "emchain:- done\n"
    )
    assert parse_sas_stderr(text) == [
        SasRecord("emchain", "error", "badCcd",
                  "CCD 6 of MOS1 is not available since revolution 961; remove it from the ccds parameter"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("** cifbuild: error (NoCcfFound)", SasRecord("cifbuild", "error", "NoCcfFound", "")),
        ("** cifbuild: error (NoCcfFound),", SasRecord("cifbuild", "error", "NoCcfFound", "")),
        ("** rgsproc: warning (), odd", SasRecord("rgsproc", "warning", "", "odd")),
        ("** eexpmap: warning no name here", SasRecord("eexpmap", "warning", "", "no name here")),
        ("** myTask: ERROR (Some_Unknown.Name-2), kept verbatim",
         SasRecord("myTask", "error", "Some_Unknown.Name-2", "kept verbatim")),
        ("**evselect: warning (ExpNoDss) no comma", SasRecord("evselect", "warning", "ExpNoDss", "no comma")),
        ("** epchain: error (x), message with (parentheses), and commas",
         SasRecord("epchain", "error", "x", "message with (parentheses), and commas")),
    ],
)
def test_record_forms(line: str, expected: SasRecord) -> None:
    assert parse_sas_stderr(line + "\r\n") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "espfilt:- **** sortarray max bins = 663\n",  # stdout chatter with stars
        "** just stars\n",
        "** task: info (X), not a level SAS uses for failures\n",
        "Traceback (most recent call last):\n  File 'x', line 1\n",
    ],
)
def test_not_records(text: str) -> None:
    assert parse_sas_stderr(text) == []


def test_blank_line_ends_a_record() -> None:
    text = "** a: error (E), first\n\n   indented but after a blank line\n"
    assert parse_sas_stderr(text) == [SasRecord("a", "error", "E", "first")]


def test_summary_body_only_joins_a_summary() -> None:
    text = "** evselect: warning (NoWCS), x\nwarning NoWCS silently occurred 1 times\n"
    assert parse_sas_stderr(text)[0].message == "x"


def test_has_error() -> None:
    warn = SasRecord("t", "warning", "W", "")
    assert not has_error([warn])
    assert has_error((warn, SasRecord("t", "error", "E", "")))
    assert not has_error([])


def test_to_dict_and_str() -> None:
    r = SasRecord("espfilt", "error", "noCounts", "")
    assert r.to_dict() == {"task": "espfilt", "level": "error", "name": "noCounts", "message": ""}
    assert str(r) == "** espfilt: error (noCounts),"


def test_module_docstring_example() -> None:
    assert doctest.testmod(sas_stderr).failed == 0


@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    records = parse_sas_stderr(text)
    assert all(r.level in ("error", "warning") for r in records)
    assert len(records) <= text.count("**")


@given(st.lists(st.sampled_from([
    "** evselect: warning (NoWCS), msg", "   continued", "warning NoWCS silently occurred 2 times",
    "** espfilt: error (noCounts), zero", "mv: rename a b", "", "** x: error (Y)", "\t tab",
])))
def test_record_count_matches_record_lines(lines: list[str]) -> None:
    records = parse_sas_stderr("\n".join(lines))
    assert len(records) == sum(line.startswith("** ") for line in lines)
    assert not any("mv:" in r.message for r in records)
