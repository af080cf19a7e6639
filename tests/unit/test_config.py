"""ProcessingConfig: quantities as strings, errors naming the field, config files, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from daxa_xmm.config import ProcessingConfig, load_config
from daxa_xmm.errors import ConfigError
from daxa_xmm.units import to_value


def test_defaults_reproduce_daxa(tmp_path: Path) -> None:
    cfg = ProcessingConfig(archive=tmp_path)
    assert cfg.timeout_s() == 7200
    esp = cfg.espfilt
    assert (esp.lo_ev, esp.hi_ev, esp.range_scale_pn, esp.range_scale_mos) == (2500, 8500, 15.0, 6.0)
    assert cfg.images.bands_ev() == [(500.0, 2000.0), (2000.0, 10000.0)]
    assert cfg.out_root == tmp_path.absolute().parent / "processed"
    assert cfg.num_cores >= 1


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [("0.5 keV", "eV", 500.0), ("2 h", "s", 7200.0), ("90 min", "s", 5400.0)],
)
def test_quantities_are_read_with_their_unit(value: object, unit: str, expected: float) -> None:
    assert to_value(value, unit, "field") == pytest.approx(expected)


@pytest.mark.parametrize("value", [3, 2.5, "3", " 7200 "])
def test_a_value_without_a_unit_is_refused_in_every_form(tmp_path: Path, value: object) -> None:
    # one rule for every energy and time (issue 13): a bare 0.5 could be keV or eV
    with pytest.raises(ConfigError, match="field: .* has no unit"):
        to_value(value, "s", "field")
    with pytest.raises(ConfigError, match="timeout.*has no unit"):
        load_config(None, archive=tmp_path, timeout=value)
    with pytest.raises(ConfigError, match="espfilt.filter_lo_en.*has no unit"):
        load_config(None, archive=tmp_path, espfilt={"filter_lo_en": value})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": "2 keV"}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"clean": {"lo_en": "2 keV", "hi_en": "0.5 keV"}}, "hi_en"),
        ({"clean": {"lo_en": "2 keV"}}, "lo_en"),
        ({"clean": {"lo_en": "2 s", "hi_en": "3 s"}}, "clean.lo_en"),
        ({"images": {"bands": [["2 keV", "1 keV"]]}}, "images.bands[0]"),
        ({"espfilt": {"binsize": "0.1 s"}}, "binsize"),
        ({"obsids": ["12345"]}, "12345"),
        ({"instruments": ["EPN"]}, "instruments"),
        ({"clean": {"pn_filt_expr": "PI > 5; rm -rf /"}}, "pn_filt_expr"),
        ({"analysis_date": "yesterday"}, "analysis_date"),
    ],
)
def test_bad_values_name_their_field(tmp_path: Path, kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, archive=tmp_path, **kwargs)


def test_config_file_with_overrides_merging_sections(tmp_path: Path) -> None:
    f = tmp_path / "cfg.yaml"
    f.write_text("num_cores: 3\nespfilt: {method: ratio, ratio: 1.5}\nclean: {lo_en: 0.2 keV, hi_en: 12 keV}\n")
    cfg = load_config(f, archive=tmp_path, espfilt={"ratio": 2.0}, num_cores=None)
    assert cfg.num_cores == 3  # None override leaves the file's value
    assert cfg.espfilt.method == "ratio" and cfg.espfilt.ratio == 2.0  # merged, not replaced
    assert cfg.clean.lo_ev == pytest.approx(200.0)


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "cfg.yaml"
    f.write_text("num_core: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(f, archive=tmp_path)
    assert "cfg.yaml" in str(info.value) and "num_core" in str(info.value)


def test_unreadable_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml", archive=tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad, archive=tmp_path)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(lst, archive=tmp_path)


def test_filter_expressions_accept_a_string_or_a_list(tmp_path: Path) -> None:
    cfg = ProcessingConfig(archive=tmp_path, clean={"pn_filt_expr": "PATTERN <= 4", "mos_filt_expr": ["PATTERN <= 12", "FLAG == 0"]})
    step = cfg.clean
    assert step.pn_filt_expr == ("PATTERN <= 4",)
    assert step.mos_filt_expr == ("PATTERN <= 12", "FLAG == 0")
