"""The identity tokens that decide what a re-run redoes (daxa_xmm/pipeline/identity.py)."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from daxa_xmm.pipeline.identity import calibration_identity, record_token, with_upstream
from daxa_xmm.pipeline.manifest import StepRecord
from daxa_xmm.pipeline.stages import pipeline_step
from daxa_xmm.sas.calls import SasCall


def _cif(path: Path, issues: list[int]) -> Path:
    cols = [
        fits.Column("SCOPE", "8A", array=["EPN"] * len(issues)),
        fits.Column("TYPEID", "16A", array=["QUANTUMEF"] * len(issues)),
        fits.Column("ISSUE", "J", array=issues),
        fits.Column("FNAME", "40A", array=[f"EPN_QUANTUMEF_{i:04d}.CCF" for i in issues]),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="CALINDEX")]).writeto(path, overwrite=True)
    return path


def _cifbuild(cif: Path, ended: str) -> StepRecord:
    return StepRecord(step="cif_build", unit="0201903501", status="ok", fingerprint="f", ended=ended, products=[cif])


def test_cifbuild_token_follows_the_calibration_set_not_the_run(tmp_path: Path) -> None:
    cif = _cif(tmp_path / "ccf.cif", [19])
    first = record_token(_cifbuild(cif, "2026-01-01T00:00:00Z"))
    again = record_token(_cifbuild(_cif(cif, [19]), "2026-11-24T00:00:00Z"))
    assert first.startswith("calindex:") and first == again  # same set: downstream stays
    newer = record_token(_cifbuild(_cif(cif, [20]), "2026-11-24T00:00:00Z"))
    assert newer != first  # newer calibration: downstream re-runs


def test_unreadable_index_falls_back_to_the_run_and_other_steps_use_theirs(tmp_path: Path) -> None:
    bad = tmp_path / "ccf.cif"
    bad.write_text("not FITS")
    assert calibration_identity(bad) is None
    assert record_token(_cifbuild(bad, "2026-01-01T00:00:00Z")) == "f@2026-01-01T00:00:00+00:00"
    rec = StepRecord(step="espfilt", unit="u", status="ok", fingerprint="abc", ended="2026-01-02T00:00:00Z")
    assert record_token(rec) == "abc@2026-01-02T00:00:00+00:00"
    assert record_token(None) == ""


def test_upstream_tokens_change_the_fingerprint() -> None:
    call = SasCall(step="espfilt", obsid="0201903501", unit="u", argv=("espfilt",), cwd=Path("/x"))
    assert with_upstream(call, []).fingerprint("22") == call.fingerprint("22")
    assert with_upstream(call, ["a"]).fingerprint("22") != with_upstream(call, ["b"]).fingerprint("22")
    assert with_upstream(call, ["a", "b"]).fingerprint("22") == with_upstream(call, ["b", "a"]).fingerprint("22")


def test_pipeline_step_names() -> None:
    assert pipeline_step("epchain_oot") == "epchain"
    assert pipeline_step("merge_subexposures_2") == "merge_subexposures"
    assert pipeline_step("expmap") == "generate_images_expmaps"
    assert pipeline_step("espfilt") == "espfilt"
