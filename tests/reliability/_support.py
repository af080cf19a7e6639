"""Helpers shared by the reliability tests: process scans, product checks, small archives."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from astropy.io import fits

from daxa_xmm.sas.orphans import OWNER_ENV

FITS_SUFFIXES = (".fits", ".FIT", ".cif", ".fit")


def processes_with_env(key: str, value: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds ``key=value``."""
    want = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X") and want in env:
            found.append(int(entry.name))
    return found


def sas_processes_of_log(call_log: Path) -> list[int]:
    """Live stand-in SAS processes of one test (they carry its DAXA_STANDIN_LOG)."""
    return processes_with_env("DAXA_STANDIN_LOG", str(call_log))


def owned_by(token: str) -> list[int]:
    return processes_with_env(OWNER_ENV, token)


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.1) -> object:
    """Poll ``predicate`` until it is truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def manifest(out: Path, obsid: str) -> dict:
    """The parsed manifest (fails the test if it is not valid JSON)."""
    return json.loads((out / obsid / "manifest.json").read_text())


def check_products_readable(out: Path, obsids: Iterable[str]) -> int:
    """Every manifest parses, every product an ``ok`` record names exists and FITS ones open.

    Also checks that no temporary file of an atomic write is left in a product folder.
    Returns how many products were checked.
    """
    n = 0
    for obsid in obsids:
        path = out / obsid / "manifest.json"
        if not path.exists():
            continue
        records = json.loads(path.read_text())["records"]
        for rec in records.values():
            if rec["status"] != "ok":
                continue
            for product in rec["products"]:
                p = Path(product)
                assert p.exists(), f"{rec['unit']}/{rec['step']}: product {p} is missing"
                if p.name.endswith(FITS_SUFFIXES):
                    with fits.open(p, memmap=False) as hdul:
                        hdul.verify("exception")
                        for hdu in hdul:
                            _ = hdu.data  # reads the whole data unit: a truncated file fails here
                n += 1
        for folder in ("events", "cleaning", "background", "images"):
            leftovers = [q.name for q in (out / obsid / folder).glob(".*.tmp")] if (out / obsid / folder).is_dir() else []
            assert not leftovers, f"{obsid}/{folder}: temporary files left behind: {leftovers}"
    return n
