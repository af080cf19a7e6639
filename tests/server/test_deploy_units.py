"""The deployment pieces that need no server: parameter merging, calibration check, prefect.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from daxa_xmm.config import ARCHIVE_ROOTS_ENV, ProcessingConfig
from daxa_xmm.errors import ConfigError
from daxa_xmm.steps.espfilt import EspfiltConfig
from deployments.params import config_from_parameters, merge_parameters
from tests.server.conftest import stop_process

REPO = Path(__file__).resolve().parents[2]


def test_a_partial_section_override_keeps_the_deployments_other_settings() -> None:
    deployment = {"archive": "/a", "espfilt": {"allowed_sigma": 2.5, "smooth": 31}, "num_cores": 3}
    run = {"archive": "/a", "num_cores": 3, "espfilt": EspfiltConfig.model_validate({"smooth": 41})}
    merged = merge_parameters(deployment, run)
    assert merged["espfilt"] == {"allowed_sigma": 2.5, "smooth": 41}
    # what Prefect's own shallow merge would have given: the deployment's allowed_sigma lost
    assert run["espfilt"].allowed_sigma == 3.0


def test_run_values_win_and_none_means_the_models_default() -> None:
    merged = merge_parameters({"archive": "/a", "obsids": ["0100000001"]}, {"archive": "/b", "obsids": None})
    assert merged == {"archive": "/b"}
    config = config_from_parameters({}, {"archive": "/b", "num_cores": None})
    assert config.num_cores >= 1 and config.obsids is None


@pytest.mark.parametrize(
    ("run", "field"),
    [
        ({"images": {"bands": [["2 keV", "0.5 keV"]]}}, "images.bands[0]"),
        ({"obsids": ["12345"]}, "obsids"),
        ({"instruments": ["EPIC"]}, "instruments"),
        ({"clean": {"mos_filt_expr": ["(FLAG == 0"]}}, "mos_filt_expr"),
        ({"archive": "/elsewhere/archive"}, "archive"),
        ({"out": "/elsewhere/out"}, "out"),
        ({"archive": "/srv/xmm"}, "out (default"),  # the default out, beside the root, is outside it
    ],
)
def test_invalid_parameters_name_the_field(run: dict, field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ARCHIVE_ROOTS_ENV, "/srv/xmm")
    with pytest.raises(ConfigError) as err:
        config_from_parameters({"archive": "/srv/xmm/archive"}, run)
    assert field in str(err.value) and str(err.value).startswith("invalid parameters: ")


def test_archive_roots_follow_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "link").symlink_to(outside)
    monkeypatch.setenv(ARCHIVE_ROOTS_ENV, str(root))
    assert ProcessingConfig(archive=root / "a" / "archive").archive == root / "a" / "archive"
    with pytest.raises(ValueError, match="outside the allowed archive roots") as err:
        ProcessingConfig(archive=root / "link" / "archive", out=root / "out")
    assert err.value.errors()[0]["loc"] == ("archive",)
    monkeypatch.delenv(ARCHIVE_ROOTS_ENV)
    ProcessingConfig(archive=outside / "archive")  # no roots: a user's own command line


def test_flow_defaults_match_processing_config() -> None:
    import inspect

    from deployments.flow import archive_flow

    params = inspect.signature(archive_flow.fn).parameters
    for name, field in ProcessingConfig.model_fields.items():
        assert name in params, name
        if name in ("archive", "num_cores", "disable_progress"):
            continue  # required; None = this machine's cores; no terminal on a server
        if name == "obsids":  # the form's plain list: empty means every ObsID, as None does
            assert params[name].default == [] and field.get_default() is None
            continue
        default = field.get_default(call_default_factory=True)
        assert params[name].default == default, name


def _ccf(path: Path, issues: dict[str, int]) -> None:
    import numpy as np
    from astropy.io import fits

    keys = sorted(issues)
    cols = [
        fits.Column("SCOPE", "6A", array=np.array([k.split("_")[0] for k in keys])),
        fits.Column("TYPEID", "32A", array=np.array([k.split("_")[1] for k in keys])),
        fits.Column("ISSUE", "I", array=np.array([issues[k] for k in keys], dtype=np.int16)),
        fits.Column("FNAME", "64A", array=np.array([f"/somewhere/{k}_{issues[k]:04d}.CCF" for k in keys])),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="CALINDEX")]).writeto(path)


def test_calindex_compares_constituents_not_paths(tmp_path: Path) -> None:
    from daxa_xmm.pipeline.calibration import calindex

    _ccf(tmp_path / "a.cif", {"EPN_QUANTUMEF": 19, "XRT1_XPSF": 17})
    _ccf(tmp_path / "b.cif", {"EPN_QUANTUMEF": 19, "XRT1_XPSF": 17})
    _ccf(tmp_path / "c.cif", {"EPN_QUANTUMEF": 20, "XRT1_XPSF": 17})
    assert calindex(tmp_path / "a.cif") == calindex(tmp_path / "b.cif") == {"EPN_QUANTUMEF_0019", "XRT1_XPSF_0017"}
    assert calindex(tmp_path / "c.cif") - calindex(tmp_path / "a.cif") == {"EPN_QUANTUMEF_0020"}


def test_check_calibration_and_mark_stale_on_the_standin(tmp_path: Path, standin) -> None:
    """cifbuild aside with today's date; the record is set aside only when the set changed."""
    import dataclasses

    from daxa_xmm.layout import ArchiveLayout
    from daxa_xmm.odf.summary import read_observation_record
    from daxa_xmm.pipeline.calibration import check_calibration, mark_stale
    from daxa_xmm.pipeline.manifest_store import ManifestStore
    from daxa_xmm.sas.runner import run_sas
    from daxa_xmm.standin.synth import write_archive
    from daxa_xmm.steps.cifbuild import cifbuild_calls

    (obsid,) = write_archive(tmp_path / "archive", 1, mix="standard")
    layout = ArchiveLayout(tmp_path / "archive", tmp_path / "processed")
    store = ManifestStore(layout.manifest(obsid), obsid)
    assert check_calibration(layout, obsid) is None  # never calibrated: nothing to compare
    record = read_observation_record(layout.odf_sum_asc(obsid))
    call = cifbuild_calls(layout, obsid, record.start)[0]
    result = run_sas(call, log_dir=layout.logs_dir(obsid))
    assert result.status == "ok", result.message
    store.record(result, "22.1.0")
    before = layout.ccf(obsid).read_bytes()

    assert check_calibration(layout, obsid) is None
    ccf_dir = Path(standin.env["SAS_CCFPATH"])
    (ccf_dir / "EMOS1_ADUCONV_0080.CCF").write_bytes((ccf_dir / "EMOS1_ADUCONV_0079.CCF").read_bytes())
    change = check_calibration(layout, obsid)
    assert change is not None and change.added == ("EMOS1_ADUCONV_0080",) and change.removed == ("EMOS1_ADUCONV_0079",)
    assert layout.ccf(obsid).read_bytes() == before, "the check must not replace the observation's ccf.cif"
    assert store.get(obsid, "cif_build").status == "ok"
    assert mark_stale(layout, change)
    rec = store.get(obsid, "cif_build")
    assert rec.status == "skipped" and "+EMOS1_ADUCONV_0080" in rec.message
    assert not store.is_up_to_date(dataclasses.replace(call), "22.1.0")


def test_prefect_yaml_offers_both_deployments_of_the_flow() -> None:
    from prefect.flows import load_flow_from_entrypoint

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deps = {d["name"]: d for d in spec["deployments"]}
    assert set(deps) == {"on-demand", "scheduled-reprocess"}
    for dep in deps.values():
        assert dep["work_pool"]["name"] == "daxa-xmm"
        path, _, name = dep["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(str(REPO / path) + ":" + name)
        assert flow.name == "daxa-xmm-archive"
        assert set(dep["parameters"]) <= set(flow.parameters.properties)
    (sched,) = deps["scheduled-reprocess"]["schedules"]
    assert sched["timezone"] == "UTC" and len(sched["cron"].split()) == 5
    assert deps["scheduled-reprocess"]["parameters"]["reprocess"] is True


def test_serve_refuses_invalid_default_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("instruments: [EPIC]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "deployments.serve", "--archive", str(tmp_path / "a"), "--config", str(cfg)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert proc.returncode == 2 and "instruments" in proc.stderr, proc.stderr


def test_stop_process_escalates_to_sigkill() -> None:
    """The helper every server fixture relies on: a process that ignores SIGTERM is still stopped."""
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout.readline().strip() == b"up"
    stop_process(proc, grace_s=1.0)
    proc.stdout.close()
    assert proc.returncode == -9
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)


def test_every_bad_field_is_named_at_once() -> None:
    # issue 11.3: a form with three mistakes is refused with all three named
    from daxa_xmm.errors import ConfigError
    from deployments.params import config_from_parameters

    with pytest.raises(ConfigError) as err:
        config_from_parameters({}, {"archive": "/data/archive", "timeout": "soon", "retry_delay": "-1 s",
                                    "espfilt": {"filter_lo_en": "1e9 keV"}})
    for field in ("timeout", "retry_delay", "espfilt.filter_lo_en"):
        assert field in str(err.value), str(err.value)


def test_form_titles_are_the_field_names_everywhere() -> None:
    # issue 11.6: section fields were titled "Filter Lo En" beside snake_case top-level ones
    from deployments.flow import archive_flow

    schema = archive_flow.parameters.model_dump(mode="json")
    tops = schema["properties"]
    assert all(v.get("title", k) == k for k, v in tops.items()), {k: v.get("title") for k, v in tops.items()}
    defs = schema.get("definitions") or schema.get("$defs") or {}
    section_fields = {k: v.get("title") for d in defs.values() for k, v in d.get("properties", {}).items()}
    assert section_fields and all(title == name for name, title in section_fields.items()), section_fields


def test_the_forms_do_not_show_switches_that_only_confuse() -> None:
    # issue 11.6: on-demand without reprocess and disable_progress; scheduled without the latter
    from deployments.serve import build_deployments

    on_demand, scheduled = build_deployments({}, "0 3 * * *")
    assert not {"reprocess", "disable_progress"} & set(on_demand._parameter_openapi_schema.properties)
    assert "disable_progress" not in scheduled._parameter_openapi_schema.properties
    assert "espfilt" in on_demand._parameter_openapi_schema.properties
    assert scheduled.parameters["reprocess"] is True
