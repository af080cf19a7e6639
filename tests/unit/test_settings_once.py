"""A setting's name and description exist once, in its model: the command line, the Prefect
form and a config file all show and take exactly the models' fields (issue 13)."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path

import pytest
import yaml

from daxa_xmm.config import ProcessingConfig, load_config
from daxa_xmm.daxa import plans as daxa_plans
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.espfilt import EspfiltConfig
from flows.cli import _parser
from flows.cli_options import _fields, config_overrides, option_name


def _words(text: str | None) -> str:
    return " ".join((text or "").split())


def _cli_help() -> dict[str, str]:
    return {a.option_strings[0]: _words(a.help) for a in _parser()._actions if a.option_strings}


def test_every_setting_is_an_option_described_as_its_field() -> None:
    helps = _cli_help()
    paths = [p for p, _ in _fields(ProcessingConfig)]
    assert "espfilt.smooth" in paths and "images.bands" in paths and "timeout" in paths
    for path, field in _fields(ProcessingConfig):
        option = option_name(path)
        assert option in helps, f"{path} is not on the command line"
        assert helps[option].startswith(_words(field.description).replace("%", "%%")), (path, helps[option])


def test_the_form_shows_the_fields_with_their_descriptions() -> None:
    from deployments.flow import _ON_A_SERVER, archive_flow

    schema = archive_flow.parameters.model_dump(mode="json")
    props, defs = schema["properties"], schema["definitions"]
    assert set(props) == set(ProcessingConfig.model_fields) | {"reprocess"}
    for name, field in ProcessingConfig.model_fields.items():
        if name not in _ON_A_SERVER and name not in ("espfilt", "clean", "images"):
            assert _words(props[name].get("description")) == _words(field.description), name
    for section in ("espfilt", "clean", "images"):
        model = ProcessingConfig.model_fields[section].annotation
        assert isinstance(model, type)
        form = defs[props[section]["$ref"].rsplit("/", 1)[-1]]["properties"]
        assert {k: _words(v.get("description")) for k, v in form.items()} == {
            k: _words(f.description) for k, f in model.model_fields.items()}, section
    # an energy is shown as it is typed
    assert props["espfilt"]["default"]["filter_lo_en"] == "2500 eV"


def test_a_config_file_holds_the_fields_as_typed_and_reads_back(tmp_path: Path) -> None:
    cfg = ProcessingConfig(archive=tmp_path / "a", espfilt={"binsize": "2 min", "filter_hi_en": "9 keV"},
                           images={"bands": [["0.3 keV", "1 keV"]]}, timeout="90 min")
    text = yaml.safe_dump(cfg.model_dump(mode="json"))
    assert "binsize: 2 min" in text and "filter_hi_en: 9 keV" in text and "timeout: 90 min" in text
    f = tmp_path / "settings.yaml"
    f.write_text(text)
    again = load_config(f)
    assert again.model_dump(mode="json") == cfg.model_dump(mode="json")
    assert again.espfilt.binsize.to_value("s") == 120 and again.images.bands_ev() == [(300.0, 1000.0)]


def test_options_reach_the_config_by_section(tmp_path: Path) -> None:
    args = _parser().parse_args([str(tmp_path), "--espfilt.smooth", "41", "--images.bands", "0.5 keV", "2 keV",
                                 "4 keV", "7 keV", "--clean.filt-mos-anom-state", "--timeout", "3 h",
                                 "--no-process-unscheduled", "--espfilt.gauss-fit-lims", "0.2", "5"])
    given = config_overrides(args)
    cfg = load_config(None, archive=tmp_path, **given)
    assert cfg.espfilt.smooth == 41 and cfg.espfilt.method == "histogram"  # the section's other fields kept
    assert cfg.images.bands_ev() == [(500.0, 2000.0), (4000.0, 7000.0)]
    assert cfg.clean.filt_mos_anom_state and not cfg.process_unscheduled and cfg.timeout_s() == 10800
    assert cfg.espfilt.gauss_fit_lims == (0.2, 5.0)
    odd = _parser().parse_args([str(tmp_path), "--images.bands", "0.5 keV", "2 keV", "4 keV"])
    with pytest.raises(argparse.ArgumentTypeError, match="images.bands"):
        config_overrides(odd)


def test_the_seed_functions_take_the_models_defaults() -> None:
    esp, clean = EspfiltConfig(), CleanEventsConfig()
    sig = inspect.signature(daxa_plans.espfilt).parameters
    assert (sig["ratio"].default, sig["allowed_sigma"].default, sig["method"].default) == (esp.ratio, esp.allowed_sigma, esp.method)
    assert sig["filter_lo_en"].default == esp.filter_lo_en and sig["filter_hi_en"].default == esp.filter_hi_en
    sig = inspect.signature(daxa_plans.cleaned_evt_lists).parameters
    assert sig["pn_filt_expr"].default == clean.pn_filt_expr and sig["acc_mos_anom_states"].default == clean.acc_mos_anom_states
