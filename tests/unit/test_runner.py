"""The SAS runner against fake SAS tasks (tests/fake_sas.py): outcomes, outputs, slots,
transience. Killing whole process groups is in ``test_runner_kill.py``."""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path

import pytest

from daxa_xmm.errors import SasInputMissing, SasOutputMissing, SasTaskError, SasTimeout
from daxa_xmm.sas.calls import OutputSpec
from daxa_xmm.sas.runner import is_transient, raise_for_result, run_sas
from tests.fake_sas import UNIT, fake_task, sas_call


# --------------------------------------------------------------------------- outcomes
def test_ok_moves_outputs_keeps_intermediates_and_logs(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "espfilt", """
        import sys
        print("espfilt:- Executing (routine): espfilt", sys.argv[1:])
        print("** espfilt: warning (NoWCS), No WCS information", file=sys.stderr)
        open("pnS003-gti.fits", "w").write("gti")
        open("pnS003-hist.qdp", "w").write("hist")
    """)
    dest = tmp_path / "products" / "cleaning" / "gti.fits"
    call = sas_call(tmp_path, "espfilt", "eventfile=pn.fits", "limits=0.1 6.5",
                 outputs=(OutputSpec("pnS003-gti.fits", dest), OutputSpec("pnS003-hist.qdp")))
    res = run_sas(call, extra_env=env)
    assert res.status == "ok", res.message
    assert res.exit_code == 0
    assert res.message == ""
    assert res.products == (dest,)
    assert dest.read_text() == "gti"
    assert not (call.cwd / "pnS003-gti.fits").exists()
    assert (call.cwd / "pnS003-hist.qdp").read_text() == "hist"
    assert [r.name for r in res.warnings] == ["NoWCS"]
    assert res.stdout_log == call.cwd / f"{UNIT}-espfilt.stdout.log"
    assert "'limits=0.1 6.5'" in res.stdout_log.read_text()  # one argv element, no shell
    assert res.stderr_log is not None and "NoWCS" in res.stderr_log.read_text()
    raise_for_result(res)  # ok: no exception


def test_nonzero_exit_fails_and_moves_nothing(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "evselect", """
        import sys
        open("out.fits", "w").write("x")
        sys.exit(3)
    """)
    dest = tmp_path / "out" / "clean.fits"
    res = run_sas(sas_call(tmp_path, "evselect", outputs=(OutputSpec("out.fits", dest),)), extra_env=env)
    assert res.status == "failed"
    assert res.exit_code == 3
    assert "evselect" in res.message and UNIT in res.message and "exit status 3" in res.message
    assert not dest.exists() and res.products == ()
    with pytest.raises(SasTaskError) as info:
        raise_for_result(res)
    assert not info.value.transient
    assert not is_transient(info.value)


def test_error_record_with_exit_zero_is_a_failure(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "espfilt", """
        import sys
        open("gti.fits", "w").write("x")
        print("** espfilt: error (noCounts), All histo counts are zero! Check your FOV Lightcurve!",
              file=sys.stderr)
        print("mv: rename a to b: No such file or directory", file=sys.stderr)
    """)
    dest = tmp_path / "out" / "gti.fits"
    res = run_sas(sas_call(tmp_path, outputs=(OutputSpec("gti.fits", dest),)), extra_env=env)
    assert res.status == "failed" and res.exit_code == 0
    assert [r.name for r in res.errors] == ["noCounts"]
    assert "noCounts" in res.message and "mv:" not in res.message
    assert not dest.exists()
    with pytest.raises(SasTaskError) as info:
        raise_for_result(res)
    assert not isinstance(info.value, (SasTimeout, SasOutputMissing))
    assert not info.value.transient
    assert info.value.records[0].name == "noCounts"


def test_missing_output_fails_and_nothing_is_moved(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "emchain", """
        open("a.fits", "w").write("a")
    """)
    dest_a, dest_b = tmp_path / "out" / "a.fits", tmp_path / "out" / "b.fits"
    call = sas_call(tmp_path, "emchain", outputs=(OutputSpec("a.fits", dest_a), OutputSpec("b.fits", dest_b)))
    res = run_sas(call, extra_env=env)
    assert res.status == "failed" and res.exit_code == 0
    assert "b.fits" in res.message and "a.fits" not in res.message
    assert not dest_a.exists() and not dest_b.exists()
    with pytest.raises(SasOutputMissing) as info:
        raise_for_result(res)
    assert not info.value.transient


def test_stale_outputs_are_not_mistaken_for_new_ones(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "epchain", "pass\n")
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "P0201903501PNS003PIEVLI0000.FIT").write_text("from last week")
    (cwd / "intermediate.FIT").write_text("left by the OOT run")
    dest = tmp_path / "events" / "pn.fits"
    call = sas_call(tmp_path, "epchain", clean_cwd=False,
                 outputs=(OutputSpec("P0201903501PNS003PIEVLI0000.FIT", dest),))
    res = run_sas(call, extra_env=env)
    assert res.status == "failed"
    assert "P0201903501PNS003PIEVLI0000.FIT" in res.message
    assert not dest.exists()
    assert (cwd / "intermediate.FIT").exists()  # clean_cwd=False keeps what it should


def test_a_file_modified_in_place_is_checked_not_recreated(tmp_path: Path) -> None:
    # rgsproc's angles stage modifies the merged list its events stage left in the cwd
    env = fake_task(tmp_path, "rgsproc", """
        text = open("P0201903501R1S004merged0000.FIT").read()
        open("P0201903501R1S004merged0000.FIT", "w").write(text + " +angles")
    """)
    cwd = tmp_path / "work"
    cwd.mkdir()
    merged = cwd / "P0201903501R1S004merged0000.FIT"
    merged.write_text("events")
    call = sas_call(tmp_path, "rgsproc", clean_cwd=False, outputs=(OutputSpec(merged.name, kind="modify"),))
    res = run_sas(call, extra_env=env)
    assert res.ok, res.message
    assert merged.read_text() == "events +angles"
    assert res.modified == (merged,)
    assert merged.name in res.leftovers  # what the next stage will look for


def test_a_missing_file_to_modify_fails_before_running(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "rgsproc", "open('ran', 'w').write('x')\n")
    call = sas_call(tmp_path, "rgsproc", clean_cwd=False,
                 outputs=(OutputSpec("P0201903501R1S004merged0000.FIT", kind="modify"),))
    res = run_sas(call, extra_env=env)
    assert (res.status, res.failure, res.exit_code) == ("failed", "missing_input", None)
    assert "P0201903501R1S004merged0000.FIT" in res.message
    assert not (call.cwd / "ran").exists()
    with pytest.raises(SasInputMissing) as info:
        raise_for_result(res)
    assert not info.value.transient


def test_a_retried_link_never_meets_its_own_partial_outset(tmp_path: Path) -> None:
    # merge refuses an existing outset (DAXA 0.3.7 names every link anew for that reason)
    env = fake_task(tmp_path, "merge", """
        import os, sys
        if os.path.exists("merge_2.fits"):
            print("** merge: error (outsetExists), merge_2.fits exists", file=sys.stderr)
            sys.exit(1)
        open("merge_2.fits", "w").write("merged")
    """)
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "merge_1.fits").write_text("link 1")
    (cwd / "merge_2.fits").write_text("half of a failed attempt")
    call = sas_call(tmp_path, "merge", clean_cwd=False, outputs=(OutputSpec("merge_2.fits"),))
    res = run_sas(call, extra_env=env)
    assert res.ok, res.message
    assert (cwd / "merge_2.fits").read_text() == "merged" and (cwd / "merge_1.fits").exists()


def test_an_output_under_another_documented_name_is_taken(tmp_path: Path) -> None:
    # espfilt on SAS 20: DAXA expects pnS003-allevcoot.fits, main the band-suffixed name
    env = fake_task(tmp_path, "espfilt", "open('pnS003-allevcoot.fits', 'w').write('oot')\n")
    dest = tmp_path / "bg" / "pnS003-allevcoot.fits"
    call = sas_call(tmp_path, "espfilt", outputs=(
        OutputSpec("pnS003-allevcoot-2500-8500.fits", dest, alt_names=("pnS003-allevcoot.fits",)),))
    res = run_sas(call, extra_env=env)
    assert res.ok, res.message
    assert dest.read_text() == "oot" and res.products == (dest,)


def test_clean_cwd_empties_the_folder(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "cifbuild", """
        import os
        open("listing", "w").write(" ".join(sorted(os.listdir("."))))
    """)
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "junk").write_text("old")
    logs = tmp_path / "logs"
    res = run_sas(sas_call(tmp_path, "cifbuild", outputs=(OutputSpec("listing"),)), extra_env=env, log_dir=logs)
    assert res.ok, res.message
    assert "junk" not in (cwd / "listing").read_text()
    assert res.stdout_log is not None and res.stdout_log.parent == logs


def test_env_precedence(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "odfingest", """
        import os
        open("env.txt", "w").write(os.environ["SAS_CCF"] + " " + str(os.environ.get("SAS_ODF")) + " "
                                   + os.environ["DAXA_X"] + " " + str(os.isatty(0)))
    """)
    call = sas_call(tmp_path, "odfingest", env={"SAS_CCF": "call.cif"}, outputs=(OutputSpec("env.txt"),))
    # the call's own variables win; an observation's variables come from the call alone
    res = run_sas(call, extra_env={**env, "SAS_CCF": "extra.cif", "SAS_ODF": "odf", "DAXA_X": "extra"})
    assert res.ok, res.message
    assert (call.cwd / "env.txt").read_text() == "call.cif None extra False"


def test_executable_not_found_is_not_tried_again(tmp_path: Path) -> None:
    # ENOENT: a retry 10 s later finds no executable either (issue 34.7)
    res = run_sas(sas_call(tmp_path, "no-such-sas-task-xyz", outputs=(OutputSpec("x"),)))
    assert res.status == "failed"
    assert res.exit_code is None
    assert "no-such-sas-task-xyz" in res.message
    assert res.stderr_log is not None and "could not start" in res.stderr_log.read_text()
    with pytest.raises(SasTaskError) as info:
        raise_for_result(res)
    assert not info.value.transient and not is_transient(info.value)


def test_killed_by_signal_is_transient(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "eexpmap", """
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    res = run_sas(sas_call(tmp_path, "eexpmap"), extra_env=env)
    assert res.status == "failed"
    assert res.exit_code == -signal.SIGKILL
    assert "SIGKILL" in res.message
    with pytest.raises(SasTaskError) as info:
        raise_for_result(res)
    assert info.value.transient


# --------------------------------------------------------------------------- slots
class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __enter__(self) -> None:
        self.events.append("enter")

    def __exit__(self, *exc: object) -> None:
        self.events.append("exit")


def test_slot_is_held_around_the_subprocess(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "evselect", "pass\n")
    rec = _Recorder()
    res = run_sas(sas_call(tmp_path, "evselect"), extra_env=env, slot=lambda: rec)
    assert res.ok and rec.events == ["enter", "exit"]
    sem = threading.BoundedSemaphore(1)
    assert run_sas(sas_call(tmp_path, "evselect"), extra_env=env, slot=sem).ok
    assert sem.acquire(blocking=False)  # released again


def test_slot_is_released_when_start_fails(tmp_path: Path) -> None:
    sem = threading.BoundedSemaphore(1)
    assert run_sas(sas_call(tmp_path, "no-such-sas-task-xyz"), slot=sem).status == "failed"
    assert sem.acquire(blocking=False)


# --------------------------------------------------------------------------- transience
@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SasTaskError("x", task="espfilt", transient=False), False),
        (SasTaskError("x", task="espfilt", transient=True), True),
        (SasTimeout("x", task="espfilt"), True),
        (SasOutputMissing("x", task="espfilt"), False),
        (OSError("no errno"), True),
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        # issue 34.7: what says something about the paths is found just so on a retry
        (IsADirectoryError(errno.EISDIR, "Is a directory"), False),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), False),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
        (OSError(errno.EROFS, "Read-only file system"), False),
        # issue 34.6: a full disk stops the run instead
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), False),
        (TimeoutError(), True),
        (ValueError("bad parameter"), False),
        (None, False),
    ],
)
def test_is_transient(exc: BaseException | None, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_clean_cwd_refuses_to_empty_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "thesis.tex").parent.mkdir()
    (home / "thesis.tex").write_text("precious")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ValueError, match="refusing"):
        run_sas(sas_call(tmp_path, "cifbuild", cwd=home))
    assert (home / "thesis.tex").exists()


def test_a_corrupt_output_with_exit_0_fails_and_is_not_placed(tmp_path: Path) -> None:
    env = fake_task(tmp_path, "evselect", "open('clean.fits', 'wb').write(b'SIMPLE  =' + b' ' * 100)\n")
    dest = tmp_path / "events" / "clean.fits"
    res = run_sas(sas_call(tmp_path, "evselect", outputs=(OutputSpec("clean.fits", dest, check="events"),)), extra_env=env)
    assert (res.status, res.failure, res.exit_code) == ("failed", "corrupt_output", 0)
    assert "corrupt output clean.fits" in res.message and not dest.exists()
    with pytest.raises(SasOutputMissing) as info:
        raise_for_result(res)
    assert not info.value.transient
