"""Fault injection, durations, the call log and the install of the SAS stand-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.standin.common import read_call_log
from daxa_xmm.standin.faults import duration_for, load_rules
from daxa_xmm.standin.install import install_standin
from daxa_xmm.standin.tasks import TASKS
from daxa_xmm.standin.testing import write_tiny_odf


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Stand-in, ccf.cif and summary made once; each test works in its own folder."""
    root = tmp_path_factory.mktemp("faults")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAS_", "DAXA_STANDIN"))}
    env.update(install_standin(root / "sas"))
    odf = write_tiny_odf(root / "odf", gz_ccd_files=False)
    subprocess.run(["cifbuild", "withobservationdate=yes", "observationdate=2004-06-17"], cwd=root, env=env,
                   check=True, capture_output=True)
    env["SAS_CCF"] = str(root / "ccf.cif")
    subprocess.run(["odfingest", f"odfdir={odf}", f"outdir={odf}", "withodfdir=yes"], cwd=root, env=env, check=True, capture_output=True)
    return {"env": env, "summary": str(next(odf.glob("*SUM.SAS"))), "root": root}


def _run(installed: dict[str, object], cwd: Path, argv: list[str], timeout: float = 60, **extra: str):
    env = {**installed["env"], **extra}
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _epchain(installed: dict[str, object], exposure: str = "003") -> list[str]:
    return ["epchain", f"odf={installed['summary']}", f"exposure={exposure}", "schedule=S"]


def test_install_creates_every_task_and_the_env(tmp_path: Path) -> None:
    env = install_standin(tmp_path, sas_version="21.0.0-abc-20230101")
    bindir = tmp_path / "bin"
    assert env["PATH"].split(os.pathsep)[0] == str(bindir)
    for task in TASKS:
        assert os.access(bindir / task, os.X_OK)
    assert Path(env["SAS_DIR"]).name == "xmmsas_21.0.0-abc-20230101"
    assert (Path(env["SAS_DIR"]) / "setsas.sh").is_file()
    assert (Path(env["SAS_CCFPATH"]) / "EPN_QUANTUMEF_0019.CCF").is_file()
    assert env["DAXA_STANDIN_SAS_VERSION"] == "21.0.0-abc-20230101"


def test_fail_rule_prints_its_name_and_message(installed: dict[str, object], tmp_path: Path) -> None:
    rules = json.dumps([{"task": "epchain", "match": "exposure=003", "action": "fail",
                         "name": "badOdf", "message": "the ODF is broken"}])
    r = _run(installed, tmp_path, _epchain(installed), DAXA_STANDIN_FAULTS=rules)
    assert r.returncode == 1
    assert "** epchain: error (badOdf), the ODF is broken" in r.stderr
    assert not list(tmp_path.glob("*EVLI*"))


def test_rule_for_another_unit_does_not_apply(installed: dict[str, object], tmp_path: Path) -> None:
    rules = json.dumps([{"task": "epchain", "match": "exposure=999", "action": "fail"}])
    r = _run(installed, tmp_path, _epchain(installed), DAXA_STANDIN_FAULTS=rules)
    assert r.returncode == 0, r.stderr


def test_rules_from_a_file_and_enospc(installed: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"task": "epchain", "action": "enospc"}]))
    r = _run(installed, tmp_path / "w", _epchain(installed), DAXA_STANDIN_FAULTS=str(path))
    assert r.returncode == 1 and "No space left on device" in r.stderr


def test_times_n_then_success(installed: dict[str, object], tmp_path: Path) -> None:
    rules = json.dumps([{"task": "epchain", "action": "fail", "name": "flaky", "times": 2}])
    env = {"DAXA_STANDIN_FAULTS": rules, "DAXA_STANDIN_STATE": str(tmp_path / "state")}
    codes = [_run(installed, tmp_path / "w", _epchain(installed), **env).returncode for _ in range(3)]
    assert codes == [1, 1, 0]


def test_crash_leaves_half_a_file_and_dies_by_signal(installed: dict[str, object], tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    rules = json.dumps([{"task": "epchain", "action": "crash"}])
    r = _run(installed, tmp_path / "w", _epchain(installed), DAXA_STANDIN_FAULTS=rules, DAXA_STANDIN_LOG=str(log))
    assert r.returncode == -signal.SIGKILL
    out = tmp_path / "w" / "P0123456789PNS003PIEVLI0000.FIT"
    assert out.is_file()
    with pytest.raises(Exception):  # noqa: B017 - astropy raises OSError or a verify error on a cut file
        with fits.open(out) as hdul:
            hdul.verify("exception")
            _ = hdul[-1].data
    assert read_call_log(log)[-1]["fault"] == "crash"


def test_hang_until_the_group_is_killed(installed: dict[str, object], tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    env = {**installed["env"], "DAXA_STANDIN_FAULTS": json.dumps([{"task": "epchain", "action": "hang"}]),
           "DAXA_STANDIN_LOG": str(log)}
    (tmp_path / "w").mkdir()
    proc = subprocess.Popen(_epchain(installed), cwd=tmp_path / "w", env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=3)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    records = read_call_log(log)
    assert records[-1]["fault"] == "hang" and records[-1]["exit"] is None


def test_sleep_then_run_and_call_log(installed: dict[str, object], tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    rules = json.dumps([{"task": "epchain", "action": "sleep", "seconds": 0.5}])
    work = tmp_path / "w"
    r = _run(installed, work, _epchain(installed), DAXA_STANDIN_FAULTS=rules, DAXA_STANDIN_LOG=str(log))
    assert r.returncode == 0, r.stderr
    _run(installed, work, ["espfilt", "eventfile=missing.fits"], DAXA_STANDIN_LOG=str(log))
    first, second = read_call_log(log)
    assert first["task"] == "epchain" and first["argv"] == _epchain(installed)[1:]
    assert first["cwd"] == str(work) and first["SAS_CCF"] == installed["env"]["SAS_CCF"]
    assert first["exit"] == 0 and first["end"] - first["start"] >= 0.5 and first["fault"] == "sleep"
    assert second["task"] == "espfilt" and second["exit"] == 1


def test_each_degrading_fault_leaves_a_whole_product_that_fails_its_data_quality_check(
        installed: dict[str, object], tmp_path: Path) -> None:
    """Issue 33.3: the stand-in's real products pass every data-quality check; with a degrading
    fault the call still exits 0 with a whole product (its structure check passes), which
    fails the check it is about."""
    from daxa_xmm.sas.product_checks import check_product
    from daxa_xmm.sas.quality import quality_problem
    from daxa_xmm.steps.quality import QualityConfig

    work, judge = tmp_path / "w", QualityConfig()
    assert _run(installed, work, _epchain(installed)).returncode == 0
    events = next(work.glob("P*PNS003PIEVLI0000.FIT"))
    attitude = next(work.glob("P*OBX000ATTTSR0000.FIT"))
    steps = [  # (fault, argv, product, structure check, data-quality check)
        ("no_good_time", ["espfilt", f"eventfile={events}", "withoot=no"], "pnS003-gti.fits", "gti", judge.flare_gti()),
        ("no_events", ["evselect", f"table={events}:EVENTS", "filteredset=clean.fits", "withfilteredset=yes",
                       "expression=gti(pnS003-gti.fits,TIME)", "updateexposure=yes"], "clean.fits", "events", judge.cleaned_events()),
        ("no_wcs", ["evselect", "table=clean.fits:EVENTS", "imageset=img.fits", "xcolumn=X", "ycolumn=Y", "imagebinning=binSize",
                    "ximagebinsize=87", "yimagebinsize=87", "withimageset=yes"], "img.fits", "image", judge.image()),
        ("zero_exposure", ["eexpmap", "imageset=img.fits", f"attitudeset={attitude}", "eventset=clean.fits",
                           "expimageset=exp.fits", "pimin=500", "pimax=2000"], "exp.fits", "image", judge.exposure_map()),
    ]
    for action, argv, product, check, quality in steps:
        good = _run(installed, work, argv)
        assert good.returncode == 0, good.stderr
        assert quality_problem(work / product, quality) is None, product
        saved = work / f"good-{product}"
        (work / product).replace(saved)
        rules = json.dumps([{"task": argv[0], "action": action}])
        bad = _run(installed, work, argv, DAXA_STANDIN_FAULTS=rules)
        assert bad.returncode == 0 and "error" not in bad.stderr, bad.stderr
        assert check_product(work / product, check) is None  # whole: not a corrupt output
        problem = quality_problem(work / product, quality)
        assert problem is not None and problem.startswith(f"{product}: "), (action, problem)
        if action == "no_wcs":
            assert "** evselect: warning (NoWCS), No WCS information available for image column X." in bad.stderr
        saved.replace(work / product)  # the next call reads the good one


def test_durations_are_deterministic_per_argv() -> None:
    env = {"DAXA_STANDIN_DURATIONS": json.dumps({"epchain": [1, 5], "cifbuild": 2})}
    a = duration_for("epchain", ["exposure=003"], env)
    assert a == duration_for("epchain", ["exposure=003"], env) and 1 <= a <= 5
    assert a != duration_for("epchain", ["exposure=004"], env)
    assert duration_for("cifbuild", [], env) == 2.0 and duration_for("merge", [], env) == 0.0


def test_duration_env_slows_the_task(installed: dict[str, object], tmp_path: Path) -> None:
    start = time.monotonic()
    r = _run(installed, tmp_path, ["sasversion"], DAXA_STANDIN_DURATIONS=json.dumps({"sasversion": 0.6}))
    assert r.returncode == 0 and time.monotonic() - start >= 0.6


def test_bad_rule_is_refused() -> None:
    with pytest.raises(ValueError):
        load_rules({"DAXA_STANDIN_FAULTS": json.dumps([{"task": "x", "action": "explode"}])})
