"""The whole run SIGKILLed half way, then started again (issue 7, DESIGN section 5).

The run is the real command, ``python -m flows.process_archive``, in its own process group,
pointed at the session's Prefect test backend. One observation is made to sit in a slow
SAS call (a stand-in ``sleep`` fault) while the other finishes; the flow process is then
SIGKILLed: no Python runs in it, so nothing it does on exit can help. Expected:

- no SAS process of the first run survives it (the runner's watchdog, daxa_xmm.sas.orphans);
- what the first run left is consistent: manifests parse, every product they call ``ok``
  is readable FITS, no temporary file is left among the products;
- the second run is not blocked by a stale lock, redoes no call the first run recorded as
  ``ok`` (from the stand-in's call log), and completes everything.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.standin.synth import write_archive
from tests.reliability._support import check_products_readable, manifest, sas_processes_of_log, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _cli_env() -> dict[str, str]:
    """The test's environment (stand-in on PATH) plus the harness's API: no server start."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        DO_NOT_TRACK="1",
    )
    return env


def _start_cli(archive: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out),
            "--instruments", "M1", "M2", "--num-cores", "2", "--obs-concurrency", "2", "--no-progress"]
    return subprocess.Popen(argv, env=_cli_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _signalled_when_busy(run: subprocess.Popen[bytes], busy_log: Path, log: Path, signals: list[int],
                         wait: float = 120) -> int:
    """Send ``signals`` to the run once the call logging to ``busy_log`` runs, each after the
    run has said it heard the one before (as a user presses Ctrl-C again); its exit code.
    A run still alive after ``wait`` seconds is killed, and the test fails with its output."""
    try:
        wait_for(lambda: busy_log.exists() and "Executing" in busy_log.read_text(errors="replace"), 240,
                 f"{busy_log.name} to start")
        for k, signum in enumerate(signals):
            if k:  # two signals sent at once may reach Python's handler as one
                wait_for(lambda: "again to stop at once" in log.read_text(errors="replace"), 60, "the first signal to be heard")
            os.kill(run.pid, signum)
        try:
            return run.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {wait:g} s after {signals}:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def _ok_argvs(out: Path, obsids: list[str]) -> set[tuple[str, ...]]:
    """(cwd, argv) of every SAS call the manifests record as ok: argv alone does not name an
    observation (the ODF is in SAS_ODF, as SAS's documentation has it). A placement (one
    sub-exposure copied as the merged list) runs no SAS task: it has no argv."""
    done = set()
    for obsid in obsids:
        if (out / obsid / "manifest.json").exists():
            for rec in manifest(out, obsid)["records"].values():
                if rec["status"] == "ok" and rec["argv"]:
                    done.add((rec["cwd"], *rec["argv"]))
    return done


def _archive_with_a_slow_chain(tmp_path: Path, standin) -> tuple[Path, Path, str, str, Path]:
    """Two observations; the second's MOS2 emchain sits for minutes, so a run is caught
    mid-way. Returns (archive, out, first, second, the slow call's stdout log)."""
    archive, out = tmp_path / "archive", tmp_path / "processed"
    first, second = write_archive(archive, 2, mix="standard")
    standin.faults([{"task": "emchain", "match": f"{second}M2S002-emchain", "action": "sleep", "seconds": 300}])
    return archive, out, first, second, out / second / "logs" / f"{second}M2S002-emchain.stdout.log"


def test_sigkill_mid_run_then_restart_resumes_cleanly(tmp_path: Path, standin) -> None:
    archive, out, first, second, busy_log = _archive_with_a_slow_chain(tmp_path, standin)

    run1 = _start_cli(archive, out, tmp_path / "run1.log")
    try:
        def mid_way() -> bool:
            if run1.poll() is not None:
                raise AssertionError(f"run 1 ended early: {(tmp_path / 'run1.log').read_text()[-3000:]}")
            if not busy_log.exists() or "Executing" not in busy_log.read_text(errors="replace"):
                return False
            done = _ok_argvs(out, [first, second])
            # the first observation has its images, the second its MOS1 images
            return sum(1 for a in done if a[1] == "eexpmap") >= 4

        wait_for(mid_way, 240, "run 1 to be mid-way")
        sas_running = sas_processes_of_log(standin.call_log)
        assert sas_running, "a SAS process must be running when the run is killed"
        os.kill(run1.pid, signal.SIGKILL)
        run1.wait()
    finally:
        if run1.poll() is None:
            os.killpg(run1.pid, signal.SIGKILL)
            run1.wait()

    # 1. No SAS process of the first run survives it.
    wait_for(lambda: not sas_processes_of_log(standin.call_log), 30,
             f"SAS processes {sas_running} of the killed run to be gone")
    # 2. What it left is consistent.
    assert check_products_readable(out, [first, second]) > 10
    done_before = _ok_argvs(out, [first, second])
    calls_before = len(standin.calls())
    assert not any(a[1] == "emchain" and "instruments=M2" in a and second in " ".join(a) for a in done_before)

    # 3. Restart (no more fault): no stale lock, nothing finished is redone, all completes.
    standin.no_faults()
    run2 = _start_cli(archive, out, tmp_path / "run2.log")
    try:
        code = run2.wait(timeout=300)
    finally:
        if run2.poll() is None:
            os.killpg(run2.pid, signal.SIGKILL)
            run2.wait()
    text = (tmp_path / "run2.log").read_text()
    assert code == 0, text[-3000:]
    assert "another run" not in text
    redone = [c for c in standin.calls()[calls_before:] if (c["cwd"], c["task"], *c["argv"]) in done_before]
    assert not redone, f"finished calls were run again: {[(c['task'], c['cwd']) for c in redone]}"
    new_calls = standin.calls()[calls_before:]
    assert any(c["task"] == "emchain" and f"{second}M2S002" in c["cwd"] for c in new_calls), "the interrupted chain must run again"
    for obsid in (first, second):
        statuses = {r["status"] for r in manifest(out, obsid)["records"].values()}
        assert statuses == {"ok"}, (obsid, statuses)
    check_products_readable(out, [first, second])
    assert not sas_processes_of_log(standin.call_log)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_cleanly_and_a_rerun_resumes(tmp_path: Path, standin, sig: int) -> None:
    # issue 12.2: on the first SIGINT/SIGTERM no new SAS call starts, the running groups are
    # ended, the manifests say interrupted, the report is written, the exit code is 128+sig
    import json

    archive, out, first, second, busy_log = _archive_with_a_slow_chain(tmp_path, standin)
    run1 = _start_cli(archive, out, tmp_path / "run1.log")
    try:
        wait_for(lambda: busy_log.exists() and "Executing" in busy_log.read_text(errors="replace"), 240,
                 "the slow emchain to start")
        os.kill(run1.pid, sig)  # as a user's Ctrl-C or `kill` reaches the command
        code = run1.wait(timeout=120)
    finally:
        if run1.poll() is None:
            os.killpg(run1.pid, signal.SIGKILL)
            run1.wait()
    text = (tmp_path / "run1.log").read_text()
    assert code == 128 + sig, text[-3000:]
    assert "run the same command again to resume" in text
    # nothing left running (the run's orphan watchdog, which shares the environment, exits
    # once it has seen its owner go)
    wait_for(lambda: not sas_processes_of_log(standin.call_log), 30, "every process of the run to be gone")
    recs = manifest(out, second)["records"]
    assert recs[f"{second}M2S002/emchain"]["status"] == "interrupted"
    assert all(r["status"] in ("ok", "interrupted", "upstream_failed") for r in recs.values())
    report = {o["obsid"]: o for o in json.loads((out / "report.json").read_text())["observations"]}
    assert report[second]["status"] == "interrupted"
    done_before = _ok_argvs(out, [first, second])
    calls_before = len(standin.calls())

    standin.no_faults()
    run2 = _start_cli(archive, out, tmp_path / "run2.log")
    try:
        assert run2.wait(timeout=300) == 0, (tmp_path / "run2.log").read_text()[-3000:]
    finally:
        if run2.poll() is None:
            os.killpg(run2.pid, signal.SIGKILL)
            run2.wait()
    redone = [c for c in standin.calls()[calls_before:] if (c["cwd"], c["task"], *c["argv"]) in done_before]
    assert not redone, "a re-run resumes where the run stopped: nothing finished is redone"
    assert all(r["status"] == "ok" for o in (first, second) for r in manifest(out, o)["records"].values())


def test_a_terminal_that_closes_stops_the_run_cleanly(tmp_path: Path, standin) -> None:
    # issue 34.2: the terminal (or SSH session) closes under a running command: the kernel
    # hangs its terminal up and sends SIGHUP; writes to it then fail. The run stops as on
    # Ctrl-C: the running call is ended and recorded, the report is written, exit 129.
    import json
    import pty
    import select
    import termios
    import threading

    archive, out, first, second, busy_log = _archive_with_a_slow_chain(tmp_path, standin)
    master, slave = pty.openpty()
    argv = [sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out),
            "--instruments", "M1", "M2", "--num-cores", "2", "--obs-concurrency", "2", "--no-progress"]
    run = subprocess.Popen(argv, env=_cli_env(), stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                           preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))  # its controlling terminal
    os.close(slave)
    seen, hang_up = bytearray(), threading.Event()

    def drain() -> None:  # what a terminal shows; a full pty buffer would block the run
        while not hang_up.is_set():
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen.extend(os.read(master, 4096))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for(lambda: busy_log.exists() and "Executing" in busy_log.read_text(errors="replace"), 240,
                 "the slow emchain to start")
        hang_up.set()
        reader.join()  # a read in progress would keep the terminal open
        os.close(master)  # the terminal goes away
        code = run.wait(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert code == 128 + signal.SIGHUP, seen.decode(errors="replace")[-3000:]
    wait_for(lambda: not sas_processes_of_log(standin.call_log), 30, "every process of the run to be gone")
    assert manifest(out, second)["records"][f"{second}M2S002/emchain"]["status"] == "interrupted"
    report = {o["obsid"]: o for o in json.loads((out / "report.json").read_text())["observations"]}
    assert report[second]["status"] == "interrupted"
    check_products_readable(out, [first, second])


def test_a_second_ctrl_c_exits_at_once_and_leaves_nothing_running(tmp_path: Path, standin) -> None:
    archive, out = tmp_path / "archive", tmp_path / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard")
    # a call that never ends by itself; two Ctrl-C in a row: out at once, nothing left behind
    standin.faults([{"task": "emchain", "match": f"{obsid}M1S001-emchain", "action": "hang"}])
    busy_log = out / obsid / "logs" / f"{obsid}M1S001-emchain.stdout.log"
    run1 = _start_cli(archive, out, tmp_path / "run1.log")
    code = _signalled_when_busy(run1, busy_log, tmp_path / "run1.log", [signal.SIGINT, signal.SIGINT], wait=60)
    assert code == 130, (tmp_path / "run1.log").read_text()[-3000:]
    wait_for(lambda: not sas_processes_of_log(standin.call_log), 30, "the SAS processes to be gone")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_while_prefect_starts_ends_the_head_starts_calls(tmp_path: Path, standin, signum: int) -> None:
    # a local run without a server: the first SAS calls start while Prefect's temporary server
    # starts (daxa_xmm/pipeline/head_start.py); Ctrl-C or SIGTERM then must end them too, and say how to resume
    archive, out = tmp_path / "archive", tmp_path / "processed"
    (obsid,) = write_archive(archive, 1, mix="standard")
    standin.faults([{"task": "cifbuild", "match": "", "action": "hang"}])
    busy_log = out / obsid / "logs" / f"{obsid}-cif_build.stdout.log"
    env = {k: v for k, v in _cli_env().items() if k != "PREFECT_API_URL"}  # its own temporary server
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # fresh: the server takes its time
    argv = [sys.executable, "-m", "flows.process_archive", str(archive), "--out", str(out), "--instruments", "M1",
            "--no-progress"]
    log = tmp_path / "run.log"
    run = subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as at a terminal
    code = _signalled_when_busy(run, busy_log, log, [signum])
    text = log.read_text(errors="replace")
    assert code == 128 + signum and "run the same command again to resume" in text, text[-3000:]
    wait_for(lambda: not sas_processes_of_log(standin.call_log), 30, "the SAS processes to be gone")
    assert manifest(out, obsid)["records"][f"{obsid}/cif_build"]["status"] == "interrupted"
    # the report is written even so (issue 33.1): the observation is not finished
    report = json.loads((out / "report.json").read_text())
    assert [(o["obsid"], o["status"]) for o in report["observations"]] == [(obsid, "interrupted")]
    assert "Report:" in text and (out / "report.html").is_file()
