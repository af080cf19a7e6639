"""Data safety: a manifest write cut short is the old file or the new one, never a mix;
a full disk during a manifest save leaves the old manifest; a stale calibration index is seen.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daxa_xmm import atomic
from daxa_xmm.pipeline.manifest import load_manifest
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.sas.calindex import ccf_stale_reason
from daxa_xmm.sas.calls import SasCall

OBSID = "0100000001"

#: Writes two big manifests in turn, as fast as it can, until killed.
_WRITER = """
import sys
from daxa_xmm.pipeline.manifest import Manifest, StepRecord, save_manifest
path = sys.argv[1]
def big(tag):
    m = Manifest(obsid="0100000001")
    for i in range(3000):
        m.put(StepRecord(step=f"s{i}", unit="0100000001M1S001", status="ok", message=tag * 20))
    return m
a, b = big("A"), big("B")
save_manifest(a, path)
print("ready", flush=True)
while True:
    save_manifest(b, path)
    save_manifest(a, path)
"""


def test_manifest_write_killed_half_way_is_old_or_new_never_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    rng = random.Random(7)
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = json.loads(path.read_text())  # complete JSON, not a truncated file
        tags = {rec["message"][0] for rec in data["records"].values()}
        assert len(data["records"]) == 3000 and len(tags) == 1, "a mix of two versions"
        seen |= tags
        assert load_manifest(path, OBSID).obsid == OBSID
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "manifest.json"]
    # a kill between creating the temp file and renaming it may leave a hidden temp file
    # beside the manifest, never in its place; it is harmless and named .manifest.json.*.tmp
    assert all(n.startswith(".manifest.json.") and n.endswith(".tmp") for n in leftovers), leftovers


def test_disk_full_during_a_manifest_save_keeps_the_old_manifest(tmp_path: Path, monkeypatch) -> None:
    store = ManifestStore(tmp_path / "manifest.json", OBSID)
    call = SasCall(step="espfilt", obsid=OBSID, unit=f"{OBSID}M1S001", argv=("espfilt",), cwd=tmp_path / "w")
    store.mark(call, "skipped", "first")
    before = (tmp_path / "manifest.json").read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError) as info:
        store.mark(call, "upstream_failed", "second")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"] or \
        sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "manifest.json.lock"]
    assert store.get(call.unit, "espfilt").message == "first"


def _cif(tmp_path: Path, ccfdir: Path, names: list[str]) -> Path:
    """An index for a 2004-06-17 observation built with analysis date 2018-07-27."""
    import numpy as np
    from astropy.io import fits

    rows = [n[:-4].rsplit("_", 2) for n in names]
    cols = [
        fits.Column("SCOPE", "6A", array=np.array([r[0] for r in rows])),
        fits.Column("TYPEID", "32A", array=np.array([r[1] for r in rows])),
        fits.Column("ISSUE", "I", array=np.array([int(r[2]) for r in rows], dtype=np.int16)),
        fits.Column("FNAME", "256A", array=np.array([str(ccfdir / n) for n in names])),
    ]
    table = fits.BinTableHDU.from_columns(cols, name="CALINDEX")
    table.header["OBSVDATE"] = "2004-06-17T10:38:28"
    table.header["ANALDATE"] = "2018-07-27T17:50:42"
    path = tmp_path / "ccf.cif"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    return path


def _ccf_file(path: Path, valdate: str = "2000-01-01T00:00:00", subdate: str = "2010-01-01T00:00:00") -> None:
    """A calibration file with the validity keywords cifbuild reads."""
    from astropy.io import fits

    hdr = fits.Header()
    hdr["VALDATE"], hdr["SUBDATE"] = valdate, subdate
    fits.PrimaryHDU(header=hdr).writeto(path, overwrite=True)


def test_ccf_stale_reason(tmp_path: Path) -> None:
    ccfdir = tmp_path / "ccf"
    ccfdir.mkdir()
    names = ["EMOS1_QUANTUMEF_0019.CCF", "XRT1_XPSF_0017.CCF"]
    for n in names:
        _ccf_file(ccfdir / n)
    cif = _cif(tmp_path, ccfdir, names)
    assert ccf_stale_reason(cif, [ccfdir]) is None
    _ccf_file(ccfdir / "EMOS1_QUANTUMEF_0018.CCF")  # an older issue changes nothing
    assert ccf_stale_reason(cif, [ccfdir]) is None
    _ccf_file(ccfdir / "EMOS1_QUANTUMEF_0021.CCF", valdate="2005-01-01T00:00:00")  # valid after the observation
    assert ccf_stale_reason(cif, [ccfdir]) is None
    _ccf_file(ccfdir / "EMOS1_QUANTUMEF_0020.CCF", subdate="2020-01-01T00:00:00")
    assert "EMOS1_QUANTUMEF_0020.CCF" in ccf_stale_reason(cif, [ccfdir])
    # a fixed analysis date (2018): 0020, submitted in 2020, is not part of that set
    assert ccf_stale_reason(cif, [ccfdir], analysis_now=False) is None
    (ccfdir / "XRT1_XPSF_0017.CCF").unlink()
    assert "XRT1_XPSF_0017.CCF, which no longer exists" in ccf_stale_reason(cif, [ccfdir], analysis_now=False)
    cif.write_bytes(b"not fits")
    assert "unreadable" in ccf_stale_reason(cif, [ccfdir])
    cif.unlink()
    assert "missing" in ccf_stale_reason(cif, [ccfdir])
