"""Tests of daxa_xmm.sas.environment (with fake ``sasversion`` executables) and daxa_xmm.sas.version."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from daxa_xmm.errors import SasNotFoundError, SasVersionError
from daxa_xmm.sas.environment import SETUP_HINT, SasEnvironment, detect_sas, sas_env_for_obs
from daxa_xmm.sas.version import SasVersion, parse_sas_version

# What SAS 22.1.0's sasversion printed (HEASARC tutorial output, see xmm-samples/sas_logs).
SAS22_OUTPUT = """\
sasversion:- Executing (routine): sasversion  -w 1 -V 2
sasversion:- XMM-Newton SAS release and build information:

SAS release: 22.1.0-a8f2c2afa-20250304
Compiled on: Tue Mar  4 07:29:35 UTC 2025
Compiled by: sasbuild@8b74f8fb7fa2
Platform   : Ubuntu22.04

SAS-related environment variables that are set:

SAS_DIR = /opt/xmmsas/xmmsas_22.1.0-a8f2c2afa-20250304
SAS_CCFPATH = /data/ccf

sasversion executed successfully!
"""
SAS20_OUTPUT = """\
sasversion:- Executing (routine): sasversion  -w 1 -V 2
sasversion:- XMM-Newton SAS release and build information:

SAS release: xmmsas_20211130_0941-20.0.0
"""


def _fake_sasversion(bin_dir: Path, output: str = SAS22_OUTPUT, code: int = 0, sleep_s: float = 0) -> Path:
    """A ``sasversion`` that prints ``output`` and exits with ``code``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "sasversion"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys, time\n"
        f"time.sleep({sleep_s!r})\n"
        f"sys.stdout.write({output!r})\n"
        f"sys.exit({code})\n"
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def sas_env(tmp_path: Path) -> dict[str, str]:
    """A complete fake SAS setup: SAS_DIR, SAS_CCFPATH, sasversion on PATH."""
    (tmp_path / "xmmsas").mkdir()
    (tmp_path / "ccf").mkdir()
    _fake_sasversion(tmp_path / "xmmsas" / "bin")
    return {
        "SAS_DIR": str(tmp_path / "xmmsas"),
        "SAS_CCFPATH": str(tmp_path / "ccf"),
        "PATH": str(tmp_path / "xmmsas" / "bin"),
    }


def test_detect_sas22(sas_env: dict[str, str], tmp_path: Path) -> None:
    found = detect_sas(sas_env)
    assert isinstance(found, SasEnvironment)
    assert found.sas_dir == tmp_path / "xmmsas"
    assert found.ccfpath == tmp_path / "ccf"
    assert found.ccfpaths == (tmp_path / "ccf",)
    assert found.version == SasVersion(22, 1, 0)
    assert found.version.build == "20250304"
    assert "SAS release: 22.1.0-a8f2c2afa-20250304" in found.sasversion_output
    assert found.sasversion_path == tmp_path / "xmmsas" / "bin" / "sasversion"


def test_detect_sas20_old_form(sas_env: dict[str, str], tmp_path: Path) -> None:
    _fake_sasversion(tmp_path / "xmmsas" / "bin", SAS20_OUTPUT)
    found = detect_sas(sas_env)
    assert (found.version.tuple, found.version.build) == ((20, 0, 0), "20211130")


def test_detect_sas_frozen(sas_env: dict[str, str]) -> None:
    found = detect_sas(sas_env)
    with pytest.raises(AttributeError):
        found.sas_dir = Path("/elsewhere")  # type: ignore[misc]


def test_default_env_is_os_environ(sas_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in sas_env.items():
        monkeypatch.setenv(k, v)
    assert detect_sas().version == (22, 1, 0)


def test_several_ccf_folders(sas_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "ccf2").mkdir()
    sas_env["SAS_CCFPATH"] = f"{tmp_path / 'ccf'}{os.pathsep}{tmp_path / 'ccf2'}"
    found = detect_sas(sas_env)
    assert found.ccfpaths == (tmp_path / "ccf", tmp_path / "ccf2")
    assert found.ccfpath == tmp_path / "ccf"


def _missing(env: dict[str, str], *needles: str) -> None:
    with pytest.raises(SasNotFoundError) as info:
        detect_sas(env)
    text = str(info.value)
    for needle in needles:
        assert needle in text
    # every error says how to set SAS up, and the way round it
    assert "setsas.sh" in text and "export SAS_CCFPATH=" in text and "headas-init.sh" in text
    assert "python -m flows.process_archive --demo" in text


def test_nothing_set() -> None:
    _missing({}, "SAS_DIR is not set", "SAS_CCFPATH is not set", "PATH is not set, so sasversion cannot be found")


def test_sas_dir_missing(sas_env: dict[str, str]) -> None:
    del sas_env["SAS_DIR"]
    _missing(sas_env, "SAS_DIR is not set")


def test_sas_dir_not_a_folder(sas_env: dict[str, str], tmp_path: Path) -> None:
    sas_env["SAS_DIR"] = str(tmp_path / "gone")
    _missing(sas_env, f"SAS_DIR={tmp_path / 'gone'} but {tmp_path / 'gone'} is not an existing folder")


def test_ccfpath_missing(sas_env: dict[str, str]) -> None:
    sas_env["SAS_CCFPATH"] = "  "
    _missing(sas_env, "SAS_CCFPATH is not set (the calibration files)")


def test_ccfpath_only_separators(sas_env: dict[str, str]) -> None:
    sas_env["SAS_CCFPATH"] = os.pathsep
    _missing(sas_env, "SAS_CCFPATH is empty")


def test_ccfpath_not_a_folder(sas_env: dict[str, str], tmp_path: Path) -> None:
    sas_env["SAS_CCFPATH"] = f"{tmp_path / 'ccf'}{os.pathsep}{tmp_path / 'nocal'}"
    _missing(sas_env, f"{tmp_path / 'nocal'} is not an existing folder")


def test_sasversion_not_on_path(sas_env: dict[str, str], tmp_path: Path) -> None:
    sas_env["PATH"] = str(tmp_path / "empty")
    _missing(sas_env, "sasversion is not on PATH")


def test_sasversion_fails(sas_env: dict[str, str], tmp_path: Path) -> None:
    _fake_sasversion(tmp_path / "xmmsas" / "bin", "** sasversion: error (NoLib), libsas.so missing\n", code=3)
    _missing(sas_env, "exited with status 3", "libsas.so missing")


def test_sasversion_prints_no_version(sas_env: dict[str, str], tmp_path: Path) -> None:
    _fake_sasversion(tmp_path / "xmmsas" / "bin", "hello\n")
    _missing(sas_env, "printed no SAS version", "hello")


def test_sasversion_hangs(sas_env: dict[str, str], tmp_path: Path) -> None:
    _fake_sasversion(tmp_path / "xmmsas" / "bin", SAS22_OUTPUT, sleep_s=60)
    with pytest.raises(SasNotFoundError, match="did not answer within 0.5 s"):
        detect_sas(sas_env, timeout_s=0.5)


def test_sasversion_cannot_run(sas_env: dict[str, str], tmp_path: Path) -> None:
    exe = tmp_path / "xmmsas" / "bin" / "sasversion"
    exe.write_text("#!/nonexistent/interpreter\n")
    _missing(sas_env, "cannot run")


def test_sas_env_for_obs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = sas_env_for_obs(Path("obs/ccf.cif"), "raw/0201903501")
    assert env == {"SAS_CCF": str(tmp_path / "obs" / "ccf.cif"), "SAS_ODF": str(tmp_path / "raw" / "0201903501")}
    assert sas_env_for_obs("/a/ccf.cif", "/b/0828_0201903501_SCX00000SUM.SAS")["SAS_ODF"] == "/b/0828_0201903501_SCX00000SUM.SAS"


def test_setup_hint_is_the_message_tail() -> None:
    with pytest.raises(SasNotFoundError) as info:
        detect_sas({})
    assert str(info.value).endswith(SETUP_HINT)


# --------------------------------------------------------------------------- sasversion.py


@pytest.mark.parametrize(
    ("text", "version", "build"),
    [
        ("SAS release: 22.1.0-a8f2c2afa-20250304", (22, 1, 0), "20250304"),
        ("22.1.0-a8f2c2afa-20250303", (22, 1, 0), "20250303"),  # DAXA read this as 20250303
        ("xmmsas_20211130_0941-20.0.0", (20, 0, 0), "20211130"),
        ("[xmmsas_20211130_0941-20.0.0]", (20, 0, 0), "20211130"),
        ("SAS release: xmmsas_20211130_0941-20.0.0", (20, 0, 0), "20211130"),
        ("xmmsas_20230412_1735-21.0.0", (21, 0, 0), "20230412"),
        ("21.0.0", (21, 0, 0), None),
        ("SAS release: 21.0.1-20230101", (21, 0, 1), "20230101"),
        ("// By: odfingest(odfingest-3.30) [xmmsas_20141104_1833-14.0.0] on 2020", (14, 0, 0), "20141104"),
        (SAS22_OUTPUT, (22, 1, 0), "20250304"),
        (SAS20_OUTPUT, (20, 0, 0), "20211130"),
        # the release line wins over numbers elsewhere in the output
        ("host 10.0.0.1\nSAS_DIR = /opt/xmmsas_20230412_1735-21.0.0\nSAS release: 22.1.0-a8f2c2afa-20250304", (22, 1, 0), "20250304"),
    ],
)
def test_parse_sas_version(text: str, version: tuple[int, int, int], build: str | None) -> None:
    v = parse_sas_version(text)
    assert v.tuple == version
    assert (v.major, v.minor, v.patch) == version
    assert v.build == build
    assert v.major < 100  # never a date


def test_real_sasversion_output(xmm_samples: Path) -> None:
    text = (xmm_samples / "sas_logs/heasarc-tutorials_pySAS_pipeline_0903540101_sas22.1.0_outputs.txt").read_text()
    block = text[text.index("sasversion:- Executing") :][:1000]
    v = parse_sas_version(block)
    assert (v.tuple, v.build) == ((22, 1, 0), "20250304")


@pytest.mark.parametrize("text", ["", "garbage", "20250303", "SAS 1.2.3.4", "21.0.123", "version twenty-two", "22.1"])
def test_garbage_raises(text: str) -> None:
    with pytest.raises(SasVersionError, match="no SAS version found"):
        parse_sas_version(text)


def test_non_string_raises() -> None:
    with pytest.raises(SasVersionError):
        parse_sas_version(None)  # type: ignore[arg-type]


def test_sas21_0_x() -> None:
    v = parse_sas_version("SAS release: 21.0.0-a1b2c3d4e-20230410")
    assert v == (21, 0, 0) and v == SasVersion(21, 0, 0)
    assert (21, 0) <= v < (21, 1)  # e.g. epchain's runradmonfix=N applies to 21.0.x only
    assert not (v < (21, 0, 0))


def test_comparisons() -> None:
    v19, v20, v22 = SasVersion(19, 0, 0), parse_sas_version("xmmsas_20211130_0941-20.0.0"), parse_sas_version("22.1.0")
    assert v19 < v20 < v22
    assert v22 > v20 >= (20,) and v20 >= (20, 0, 0)
    assert v19 != v20 and v20 == SasVersion(20, 0, 0, build="x")
    assert sorted([v22, v19, v20]) == [v19, v20, v22]
    assert hash(v20) == hash(SasVersion(20, 0, 0))
    assert {v20, SasVersion(20, 0, 0)} == {v20}
    assert (v20 == "20.0.0") is False  # strings are not compared
    with pytest.raises(TypeError):
        _ = v20 < "21.0.0"  # type: ignore[operator]


def test_str_and_repr() -> None:
    v = parse_sas_version("22.1.0-a8f2c2afa-20250304")
    assert str(v) == "22.1.0"
    assert repr(v) == "SasVersion(22, 1, 0, build='20250304')"
    assert v.raw == "22.1.0-a8f2c2afa-20250304"


def test_heasoft_is_required_only_when_asked(sas_env: dict[str, str], tmp_path: Path) -> None:
    # emchain needs HEASoft: DAXA 0.3.7 checks for lcurve before emchain (_backend_check.py)
    detect_sas(sas_env)  # PN-only runs do not need it
    with pytest.raises(SasNotFoundError, match="lcurve.*emchain"):
        detect_sas(sas_env, heasoft=True)
    lcurve = tmp_path / "xmmsas" / "bin" / "lcurve"
    lcurve.write_text("#!/bin/sh\n")
    lcurve.chmod(0o755)
    assert detect_sas(sas_env, heasoft=True).version == SasVersion(22, 1, 0)
