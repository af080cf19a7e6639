"""A full disk stops the run at once with one message, and a re-run once space is freed
resumes (issue 34.6). Before, every unit met the full disk in turn and each was tried again
with backoff, for minutes.

The command line runs as a user runs it. The disk is full either as a SAS task says it
(the stand-in's ``enospc`` fault) or for real: the products folder on a small tmpfs filled
up (needs ``mount``, as root; skipped, saying so, where the machine refuses it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from flows.cli import DISK_FULL_EXIT
from tests.integration.flowkit import cli_env, run_cli
from tests.reliability._support import check_products_readable, manifest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

_ARGS = ["--instruments", "M1", "M2", "--num-cores", "1", "--obs-concurrency", "1", "--no-progress", "--retry-delay", "5 s"]


def _ok_calls(out: Path, obsids: list[str]) -> set[tuple[str, ...]]:
    return {(r["cwd"], *r["argv"]) for o in obsids if (out / o / "manifest.json").exists()
            for r in manifest(out, o)["records"].values() if r["status"] == "ok"}


def test_a_sas_task_that_finds_the_disk_full_stops_the_run(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    first, second = write_archive(archive, 2, mix="standard")
    standin.faults([{"task": "espfilt", "match": f"{first}M1S001", "action": "enospc"}])
    done = run_cli([str(archive), "--out", str(out), *_ARGS], cwd=tmp_path, env=cli_env())
    assert done.returncode == DISK_FULL_EXIT, done.stdout + done.stderr[-3000:]
    assert "the disk is full" in done.stdout and "run the same command again to resume" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    rec = manifest(out, first)["records"][f"{first}M1S001/espfilt"]
    assert rec["status"] == "failed" and rec["attempts"] == 1, rec  # not tried again
    # the run stopped: the second observation (one at a time) never started a SAS call
    assert not [c for c in standin.calls() if second in c["cwd"]]
    report = {o["obsid"]: o for o in json.loads((out / "report.json").read_text())["observations"]}
    assert report[first]["status"] in ("interrupted", "partial", "failed")
    before = _ok_calls(out, [first, second])
    n = len(standin.calls())

    standin.no_faults()  # space freed
    again = run_cli([str(archive), "--out", str(out), *_ARGS], cwd=tmp_path, env=cli_env())
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    redone = [c for c in standin.calls()[n:] if (c["cwd"], c["task"], *c["argv"]) in before]
    assert not redone, redone
    check_products_readable(out, [first, second])


@contextlib.contextmanager
def _small_disk(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but ``leave`` bytes."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    with filler.open("wb") as fh:
        fh.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))
    return filler


def test_a_products_disk_that_fills_up_stops_the_run_and_a_rerun_resumes(tmp_path: Path, standin) -> None:
    archive = tmp_path / "archive"
    obsids = write_archive(archive, 2, mix="standard")
    with _small_disk(tmp_path / "disk", "16m") as disk:
        out = disk / "processed"
        filler = _fill(disk, 96 * 1024)  # room for the first calls' logs and products, not for the run
        done = run_cli([str(archive), "--out", str(out), *_ARGS], cwd=tmp_path, env=cli_env(), timeout_s=240)
        text = done.stdout + done.stderr
        assert done.returncode == DISK_FULL_EXIT, text[-3000:]
        assert "the disk is full" in done.stdout and "Traceback" not in text, text[-3000:]
        filler.unlink()  # the user frees space
        n = len(standin.calls())
        before = _ok_calls(out, obsids)
        again = run_cli([str(archive), "--out", str(out), *_ARGS], cwd=tmp_path, env=cli_env(), timeout_s=240)
        assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
        assert all(r["status"] == "ok" for o in obsids for r in manifest(out, o)["records"].values())
        redone = [c for c in standin.calls()[n:] if (c["cwd"], c["task"], *c["argv"]) in before]
        assert not redone, redone


def test_a_rerun_with_nothing_to_do_says_its_report_was_not_written_on_a_full_disk(
        tmp_path: Path, standin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from daxa_xmm.report import archive_report
    from flows.cli import main

    archive, out = tmp_path / "archive", tmp_path / "processed"
    write_archive(archive, 1, mix="standard")
    args = [str(archive), "--out", str(out), *_ARGS]
    assert run_cli(args, cwd=tmp_path, env=cli_env()).returncode == 0
    before = (out / "report.json").read_bytes()

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "report.json"))

    monkeypatch.setattr(archive_report, "write_report", full)
    for key in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL", "PREFECT_LOGGING_LOG_PRINTS", "DO_NOT_TRACK"):
        monkeypatch.setenv(key, os.environ.get(key, "x"))  # main() sets defaults; undone after
    assert main(args) == 0  # every observation is finished: the outcome stands, said, not a traceback
    printed = capsys.readouterr().out
    assert "Processed 1 observation(s): 1 ok" in printed, printed
    assert f"not written ({os.strerror(errno.ENOSPC)})" in printed, printed
    assert (out / "report.json").read_bytes() == before  # the last report is left whole
