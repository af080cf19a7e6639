"""Bad input, each refused with an error that names what is wrong (issue 7, part 2).

Fast checks at the boundary where each input enters: the config (timeouts, energies,
unknown keys, filter expressions), the layout (ObsIDs with path characters, symlinks out of
the archive), the summary parser, and the runner with the SAS stand-in (an event list that
is not FITS, shell syntax in an expression that reaches SAS as one argv element). The
flow-level "no effect on the others" is in test_bad_observations.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig, load_config
from daxa_xmm.errors import ConfigError, FilterExpressionError, LayoutError, SasTaskError, SummaryParseError
from daxa_xmm.layout import ArchiveLayout, check_obsid
from daxa_xmm.odf.summary import read_observation_record, read_odf_summary
from daxa_xmm.sas.calls import OutputSpec, SasCall
from daxa_xmm.sas.filters import validate_expression
from daxa_xmm.sas.runner import raise_for_result, run_sas
from daxa_xmm.steps.clean_events import CleanEventsConfig

DATA_SUMMARY = Path(__file__).resolve().parents[2] / "daxa_xmm" / "data" / "0001_0123456789_SCX00000SUM.SAS"


def _cfg(tmp_path: Path, **kw: object) -> ProcessingConfig:
    return load_config(None, archive=tmp_path / "archive", **kw)


# --------------------------------------------------------------------------- timeouts
@pytest.mark.parametrize(
    "value, words",
    [
        ("soon", "timeout"),
        ("2 keV", "timeout"),
        ("7200", "no unit"),
        ("-1 h", "at least 1 s"),
        ("inf h", "finite"),
        ("0 s", "at least 1 s"),
        ("1e-9 s", "at least 1 s"),
        ("2 parsecs", "timeout"),
        ("nan s", "timeout"),
    ],
)
def test_timeouts_that_are_not_times(tmp_path: Path, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        _cfg(tmp_path, timeout=value)
    assert "timeout" in str(info.value)


def test_a_timeout_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        _cfg(tmp_path, timeout=["2 h"])


# --------------------------------------------------------------------------- energies
@pytest.mark.parametrize(
    "kw, words",
    [
        ({"clean": {"lo_en": "0.5 s", "hi_en": "2 keV"}}, "clean.lo_en"),
        ({"clean": {"lo_en": "0.5 keV", "hi_en": "2 m"}}, "clean.hi_en"),
        ({"clean": {"lo_en": "10 keV", "hi_en": "2 keV"}}, "larger than"),
        ({"clean": {"lo_en": "2 keV"}}, "together"),
        ({"clean": {"lo_en": "500", "hi_en": "2000"}}, "no unit"),
        ({"clean": {"lo_en": "-1 keV", "hi_en": "2 keV"}}, "lo"),
        ({"images": {"bands": [["2 keV", "0.5 keV"]]}}, r"images.bands\[0\]"),
        ({"images": {"bands": [["0.5 h", "2 keV"]]}}, r"images.bands\[0\]\[0\]"),
        ({"espfilt": {"filter_lo_en": "2.5 Angstrom"}}, "espfilt.filter_lo_en"),
        ({"espfilt": {"filter_lo_en": "9 keV", "filter_hi_en": "2 keV"}}, "espfilt"),
    ],
)
def test_energies_in_the_wrong_units_or_order(tmp_path: Path, kw: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        _cfg(tmp_path, **kw)


# --------------------------------------------------------------------------- config files
@pytest.mark.parametrize(
    "text, words",
    [
        ("timout: 2 h\n", "timout"),                                 # a typo must not be ignored
        ("espfilt:\n  methd: ratio\n", "methd"),                     # nested too
        ("clean:\n  lo_en: 0.5 keV\n  hi_en: 2 keV\n  color: red\n", "color"),
        ("- just\n- a list\n", "mapping"),
        ("timeout: [unclosed\n", "not valid YAML"),
    ],
)
def test_config_file_with_unknown_keys_or_bad_shape(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as info:
        load_config(path, archive=tmp_path / "archive")
    assert str(path) in str(info.value)


def test_cli_reports_bad_settings_and_exits_2(tmp_path: Path, capsys, monkeypatch) -> None:
    from flows.cli import main

    for key in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_LOG_PRINTS", "DO_NOT_TRACK"):
        monkeypatch.setenv(key, os.environ.get(key, "x"))  # main() sets defaults; undo them after
    (tmp_path / "archive").mkdir()
    (tmp_path / "cfg.yaml").write_text("retries: 2\nnum_cores: 1\nunknown_knob: 3\n")
    assert main([str(tmp_path / "archive"), "--timeout", "soon"]) == 2
    assert "timeout" in capsys.readouterr().err
    assert main([str(tmp_path / "archive"), "--config", str(tmp_path / "cfg.yaml")]) == 2
    assert "unknown_knob" in capsys.readouterr().err


# --------------------------------------------------------------------------- ObsIDs and paths
@pytest.mark.parametrize("obsid", ["../0100000001", "/etc/passwd", "0100000001/../../x", "..", "", "01000000 1",
                                   "0100000001\n", "０１００００００01"])
def test_obsids_with_path_characters_are_refused(tmp_path: Path, obsid: str) -> None:
    with pytest.raises(LayoutError, match="10 digits"):
        check_obsid(obsid)
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "out")
    for where in (layout.odf_dir, layout.obs_dir, layout.manifest):
        with pytest.raises(LayoutError):
            where(obsid)
    with pytest.raises(ConfigError, match="10 digits"):
        _cfg(tmp_path, obsids=[obsid])


def test_symlinks_leading_out_of_the_archive_or_products_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "0100000001").mkdir(parents=True)
    (tmp_path / "archive").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "archive" / "0100000001").symlink_to(outside / "0100000001")
    (tmp_path / "out" / "0100000002").symlink_to(outside)
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "out")
    with pytest.raises(LayoutError, match="leaves the archive root"):
        layout.odf_sum_asc("0100000001")
    with pytest.raises(LayoutError, match="leaves the archive root"):
        layout.manifest("0100000002")
    # a nested odf/ symlink pointing out is refused too
    (tmp_path / "archive" / "0100000003").mkdir()
    (tmp_path / "archive" / "0100000003" / "odf").symlink_to(outside)
    with pytest.raises(LayoutError, match="leaves the archive root"):
        layout.odf_dir("0100000003")


def test_empty_archive_is_a_clear_error(tmp_path: Path) -> None:
    from flows.process_archive import _obsids

    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "not-an-obsid").mkdir()
    cfg = _cfg(tmp_path)
    layout = ArchiveLayout(cfg.archive, cfg.out_root)
    with pytest.raises(LayoutError, match="holds no ObsID folders"):
        _obsids(cfg, layout)
    with pytest.raises(LayoutError, match="does not exist"):
        ArchiveLayout(tmp_path / "missing", tmp_path / "out").obsids()


def test_obsid_folder_without_odf_files(tmp_path: Path) -> None:
    folder = tmp_path / "archive" / "0100000001"
    folder.mkdir(parents=True)
    (folder / "README.txt").write_text("nothing here\n")
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "out")
    assert layout.odf_files("0100000001") == []
    with pytest.raises(LayoutError, match=r"0100000001: no \*_SCX00000SUM.ASC .*not an ODF"):
        layout.odf_sum_asc("0100000001")


# --------------------------------------------------------------------------- summaries
def _variants() -> dict[str, bytes]:
    good = DATA_SUMMARY.read_bytes()
    lines = good.decode().splitlines(keepends=True)
    lying = good.decode().replace("1 / Number of exposures for this instrument",
                                  "3 / Number of exposures for this instrument", 1)
    assert lying != good.decode()
    return {
        "empty": b"",
        "blank": b"\n\n  \n",
        "truncated": "".join(lines[: len(lines) * 2 // 3]).encode(),
        "truncated mid-line": good[: len(good) // 2 + 7],
        "binary": bytes(range(256)) * 8,
        "fits instead": b"SIMPLE  =                    T" + b" " * 2850,
        "lies about exposures": lying.encode(),
    }


@pytest.mark.parametrize("kind", list(_variants()))
def test_bad_summaries_raise_summary_parse_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    path.write_bytes(_variants()[kind])
    with pytest.raises(SummaryParseError) as info:
        read_odf_summary(path, obs_id="0123456789")
    assert str(path) in str(info.value)


def test_the_base_summary_is_good() -> None:
    assert read_odf_summary(DATA_SUMMARY).observation.obsid == "0123456789"


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02garbage", b"OBSERVATION\n0100000001 / Observation Identifier\n"])
def test_bad_sum_asc_observation_record(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "0828_0100000001_SCX00000SUM.ASC"
    path.write_bytes(content)
    with pytest.raises(SummaryParseError) as info:
        read_observation_record(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- event lists
def test_event_list_that_is_not_fits_fails_with_a_named_sas_error(tmp_path: Path, standin) -> None:
    standin.real_products()  # evselect reads its input
    bogus = tmp_path / "P0100000001M1S001MIEVLI0000.FIT"
    bogus.write_text("this is not a FITS file\n" * 50)
    call = SasCall(step="cleaned_evt_lists", obsid="0100000001", unit="0100000001M1S001",
                   argv=("evselect", f"table={bogus}", "withfilteredset=yes", "filteredset=clean.fits",
                         "expression=PI in [200:12000]", "updateexposure=yes"),
                   cwd=tmp_path / "work", outputs=(OutputSpec("clean.fits", tmp_path / "out" / "clean.fits"),))
    result = run_sas(call)
    assert result.status == "failed"
    assert bogus.name in result.message and "datasetCouldNotBeRead" in result.message
    with pytest.raises(SasTaskError) as info:
        raise_for_result(result)
    assert info.value.transient is False  # the same file fails the same way: no retry
    assert not (tmp_path / "out" / "clean.fits").exists()


# --------------------------------------------------------------------------- shell syntax
NASTY = [
    "PI > 200 ; rm -rf /",
    "PI > 200 && `touch PWNED`",
    "PI > 200 && $(touch PWNED)",
    "PI > 200\ntouch PWNED",
    "PI > 200 | touch PWNED",
    "PI > 200 && CCDNR == 'x;$(touch PWNED)`touch PWNED`'",
    'PI > 200 && CCDNR == "a\'$(touch PWNED)"',
    "PI > 200 && CCDNR == 'unterminated",
    "gti($(touch PWNED),TIME)",
    "gti(../../etc/passwd;x,TIME)",
    # legal SAS syntax (a quoted string operand) that a shell would run: must stay data
    "PI > 200 && CCDNR == 'rm -rf / && touch PWNED'",
    "PI > 200 || FLAG == \"touch PWNED | sh\"",
]


@pytest.mark.parametrize("expr", NASTY)
def test_shell_syntax_in_filter_expressions_never_reaches_a_shell(tmp_path: Path, standin, expr: str) -> None:
    """Each is refused by validation, or reaches evselect as ONE argv element, verbatim."""
    try:
        validate_expression(expr)
    except FilterExpressionError as exc:
        assert str(exc)  # refused, with a message (and a caret position)
        with pytest.raises(ConfigError):
            _cfg(tmp_path, clean={"pn_filt_expr": [expr]})
        return
    # accepted: it is data, handed to evselect as a single argv element
    from tests.reliability._events import write_events

    table = write_events(tmp_path / "events.fits")
    call = SasCall(step="cleaned_evt_lists", obsid="0100000001", unit="0100000001PNS003",
                   argv=("evselect", f"table={table}", "withfilteredset=yes", "filteredset=clean.fits",
                         f"expression={expr}", "updateexposure=yes"),
                   cwd=tmp_path / "work")
    run_sas(call)
    logged = [c for c in standin.calls() if c["task"] == "evselect"]
    assert len(logged) == 1
    assert logged[0]["argv"].count(f"expression={expr}") == 1
    assert len(logged[0]["argv"]) == 5
    assert not list(tmp_path.rglob("PWNED")) and not Path("PWNED").exists()


def test_at_least_one_nasty_expression_is_accepted_and_shown_harmless() -> None:
    """Keep the argv branch of the test above honest: quotes are legal SAS syntax."""
    accepted = []
    for expr in NASTY:
        try:
            validate_expression(expr)
            accepted.append(expr)
        except FilterExpressionError:
            pass
    assert accepted and len(accepted) < len(NASTY)


@pytest.mark.parametrize("value", ["-10 s", "nan s", "soon"])
def test_retry_delays_that_are_not_times(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="retry_delay"):
        _cfg(tmp_path, retry_delay=value)


# ------------------------------------------------------------------ issue 12.5 and 12.6
@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"images": {"bands": [["-1 keV", "2 keV"]]}}, "images.bands[0][0]"),
        ({"images": {"bands": [["0 keV", "2 keV"]]}}, "outside the EPIC energy range"),
        ({"images": {"bands": [["0.5 keV", "1e9 keV"]]}}, "images.bands[0][1]"),
        ({"images": {"bands": [["0.5 keV", "2 keV"], ["500 eV", "2000 eV"]]}}, "repeats band [0]"),
        ({"clean": {"lo_en": "-0.2 keV", "hi_en": "12 keV"}}, "clean.lo_en"),
        ({"espfilt": {"filter_hi_en": "1e9 keV"}}, "espfilt.filter_hi_en"),
        ({"obsids": []}, "selects nothing"),
        ({"clean": {"pn_filt_expr": ["gti(/etc/passwd,TIME)"]}}, "outside the archive"),
        # evselect would open these from each call's working folder, not from the user's
        ({"clean": {"pn_filt_expr": ["gti(my-gti.fits,TIME)"]}}, "clean.pn_filt_expr"),
        ({"clean": {"mos_filt_expr": ["gti(../gti/my-gti.fits,TIME)"]}}, "absolute path"),
    ],
)
def test_settings_refused_at_once_naming_the_field(tmp_path: Path, kw: dict, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(tmp_path, **kw)
    assert words in str(info.value)


def test_a_gti_file_named_by_its_absolute_path_in_the_products_reaches_the_expression(tmp_path: Path) -> None:
    out = tmp_path / "processed"
    mine = f"gti({out / 'my-gti.fits'},TIME)"
    cfg = _cfg(tmp_path, out=out, clean={"pn_filt_expr": [mine]})
    assert cfg.section(CleanEventsConfig).pn_filt_expr == (mine,)


def test_duplicate_obsids_are_one(tmp_path: Path) -> None:
    assert _cfg(tmp_path, obsids=["0201903501", "0201903501"]).obsids == ["0201903501"]


def test_out_that_is_a_file_or_inside_the_archive_is_refused(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "afile").write_text("x")
    for out, words in ((tmp_path / "afile", "is a file"), (tmp_path / "archive", "inside it"),
                       (tmp_path / "archive" / "products", "inside it")):
        with pytest.raises(ConfigError, match=words):
            _cfg(tmp_path, out=out)


def test_yaml_dates_stay_strings_and_bad_files_are_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"archive: {tmp_path / 'archive'}\nanalysis_date: 2020-01-01\n")
    assert load_config(cfg).analysis_date == "2020-01-01"  # unquoted: accepted
    cfg.write_text(f"archive: {tmp_path / 'archive'}\nanalysis_date: 2025-13-45\n")
    with pytest.raises(ConfigError, match="analysis_date") as info:
        load_config(cfg)
    assert "not valid YAML" not in str(info.value)
    cfg.write_bytes(b"archive: /data\nnote: caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(cfg)


def test_a_constituent_linked_from_outside_the_archive_is_refused(tmp_path: Path) -> None:
    from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_odf

    odf = write_odf(tmp_path / "archive", "0100000001", ObsSpec(exposures=(ExposureSpec("M1", "S001"),)))
    outside = tmp_path / "elsewhere.FIT"
    outside.write_text("x")
    (odf / "0828_0100000001_M1S00199XXX.FIT").symlink_to(outside)
    with pytest.raises(LayoutError, match="leaves the archive root"):
        ArchiveLayout(tmp_path / "archive", tmp_path / "out").odf_files("0100000001")


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m flows.process_archive ARGS``, reporting whether Prefect was imported."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['process_archive', *{args!r}]\n"
            "try:\n    runpy.run_module('flows.process_archive', run_name='__main__')\n"
            "finally:\n    print('PREFECT IMPORTED' if 'prefect' in sys.modules else 'no prefect', file=sys.stderr)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **env})


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["/nonexistent/archive"], "does not exist"),
        (["ARCHIVE", "--obsids", "0999999999"], "not found in archive"),
        (["ARCHIVE", "--config", "bad.yaml"], "not valid YAML"),
        (["ARCHIVE", "--out", "ARCHIVE/sub"], "inside it"),
    ],
)
def test_errors_before_start_up_are_reported_before_prefect_without_traceback(
        tmp_path: Path, args: list[str], words: str) -> None:
    # issue 12.7: reported at once (Prefect is never imported), one clear line, exit 2
    (tmp_path / "archive" / "0100000001").mkdir(parents=True)
    (tmp_path / "bad.yaml").write_text("archive: [\n")
    args = [a.replace("ARCHIVE", str(tmp_path / "archive")) for a in args]
    proc = _cli(args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert "no prefect" in proc.stderr


def test_an_archive_path_that_is_a_symlink_loop_is_one_clear_line(tmp_path: Path) -> None:
    # issue 34.3: was `RuntimeError: Symlink loop` from config.py
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    proc = _cli([str(tmp_path / "a"), "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "archive:" in proc.stderr and "symlink loop" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "no prefect" in proc.stderr


@pytest.mark.parametrize("under", [False, True], ids=["read-only-itself", "under-a-read-only-folder"])
def test_an_out_folder_that_cannot_be_written_is_refused_before_start_up(tmp_path: Path, under: bool) -> None:
    # issue 34.3: was `OSError: [Errno 30] Read-only file system` after Prefect started.
    # As root, permission bits stop nothing: a read-only mount does (skipped where refused).
    (tmp_path / "archive" / "0100000001").mkdir(parents=True)
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True, text=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here (needs root and mount): {mounted.stderr.strip()}")
    try:
        out = ro / "processed" if under else ro
        proc = _cli([str(tmp_path / "archive"), "--out", str(out)], tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Read-only file system" in proc.stderr and str(out) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "no prefect" in proc.stderr


def test_an_unreachable_prefect_api_is_one_clear_line(tmp_path: Path, standin) -> None:
    from daxa_xmm.standin.synth import write_archive

    write_archive(tmp_path / "archive", 1, mix="standard")
    proc = _cli([str(tmp_path / "archive"), "--instruments", "PN", "--no-progress"], tmp_path,
                PREFECT_API_URL="http://127.0.0.1:9/api")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "PREFECT_API_URL" in proc.stderr


@pytest.mark.parametrize("expr", ["FLAG == 'A'", "'PI > 200'", "PI > 200 && CCDNR == 'rm -rf /'"])
def test_single_quoted_strings_are_refused_before_evselect(tmp_path: Path, expr: str) -> None:
    # issue 12.5: they passed the validator and failed in evselect
    with pytest.raises(ConfigError, match="single quotes"):
        _cfg(tmp_path, clean={"pn_filt_expr": [expr]})
    validate_expression('PI > 200 || FLAG == "x"')  # double-quoted strings stay data
