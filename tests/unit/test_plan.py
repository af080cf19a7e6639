"""The plan CLI: every SAS call for the shipped example, printed, nothing run, no SAS needed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from daxa_xmm.pipeline.plan import EXAMPLE_SUMMARY, main

# task -> real parameter names it must show (from DESIGN section 3 and the real Executing lines)
EXPECTED = {
    "cifbuild": ["calindexset=", "withobservationdate=yes", "observationdate=2001-01-01", "analysisdate=", "fullpath="],
    "odfingest": ["odfdir=", "outdir=", "withodfdir=yes"],
    "epchain": ["odfaccess=odf", "exposure=003", "schedule=S", "ccds=", "withoutoftime=Y", "keepintermediate=raw"],
    "emchain": ["instruments=M1", "exposures=S001", "addtaglenoise=no", "makeflaregti=no"],
    "rgsproc": ["entrystage=1:events", "finalstage=3:filter", "withinstexpids=true", "instexpids=R1S004"],
    "emanom": ["eventfile=", "keepcorner=no"],
    "espfilt": ["eventfile=", "withoot=yes", "ootfile=", "method=histogram", "elow=2500", "ehigh=8500", "rangescale=15"],
    "evselect": ["table=", "filteredset=", "withfilteredset=yes", "expression=", "updateexposure=yes", "imageset="],
    "merge": ["set1=", "set2=", "outset="],
    "eexpmap": ["imageset=", "attitudeset=", "eventset=", "expimageset=", "pimin=500", "pimax=2000"],
}


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daxa_xmm.pipeline.plan", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_cli_shows_every_task_with_real_parameters(tmp_path: Path) -> None:
    proc = _run("--out", str(tmp_path / "processed"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    cmd_lines = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("$ ")]
    for task, params in EXPECTED.items():
        lines = [line for line in cmd_lines if line.split(" ", 1)[0] == task]
        assert lines, f"{task} not planned"
        text = " ".join(lines)
        for p in params:
            assert p in text, f"{task}: {p}"
    # selection: the Diagnostic (U003) and Offset (U004) PN exposures are not processed
    assert "exposure=002" in out and "exposure=004" not in out and "PNU003" not in out
    assert "single sub-exposure, copied not merged" in out  # M1 and M2 have one each
    assert not (tmp_path / "processed").exists(), "a plan writes nothing"


@pytest.mark.parametrize(("version", "present", "absent"), [
    ("21.0.3", ["runradmonfix=N", "keepinterfiles=yes"], ["withlongnames"]),
    ("20.0.0", ["withlongnames=yes", "pnS003-gti-2500-8500.fits"], ["runradmonfix"]),
])
def test_cli_sas_version(tmp_path: Path, capsys: pytest.CaptureFixture[str], version, present, absent) -> None:
    assert main(["--out", str(tmp_path), "--sas-version", version, str(EXAMPLE_SUMMARY)]) == 0
    out = capsys.readouterr().out
    for p in present:
        assert p in out
    for p in absent:
        assert p not in out


def test_cli_bad_summary_exits_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "0001_0123456789_SCX00000SUM.SAS"
    bad.write_text("not a summary\n")
    proc = _run(str(bad), cwd=tmp_path)
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_real_summary_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str], xmm_samples: Path) -> None:
    real = xmm_samples / "odf_summaries" / "0828_0201903501_SCX00000SUM.SAS"
    assert main(["--out", str(tmp_path), str(real)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"epchain .*exposure=003 schedule=S", out)
    assert "instexpids=R1S004" in out
