"""A finished archive of any size, made from one observation the flow really processed.

Processing 15,000 observations through the flow takes hours even with the fast stand-in
(BENCHMARKS.md section 2: 13.8 minutes for 2,000 on PostgreSQL, quiet machine), but what
the nightly no-op re-check and the report cost depends only on what a finished archive
holds on disk. So this copies one finished observation (its ODF folder and its products
folder, as a run of ``overhead.py --work DIR`` or ``noop.py --work DIR`` leaves them) under
new ObsIDs:

- every file is copied with the ObsID rewritten, in its name and its bytes (ObsIDs are
  ten digits, so a FITS file keeps its size and block structure); mtimes are kept, as
  ``cp -a`` keeps them;
- the manifest's fingerprints hash the calls' argv, which hold the ObsID, so they are made
  again: each call the plan holds for the new ObsID is built (:mod:`daxa_xmm.pipeline.walk`)
  and its record gets the fingerprint and upstream tokens a run would have recorded for it
  (:func:`daxa_xmm.pipeline.manifest.call_fingerprint` of the call with its upstream
  tokens, in plan order), nothing else of the record changed.

Before any copy, the same restamping is applied to the source observation itself and must
leave every fingerprint and upstream list as the run recorded them: that checks the
restamping reproduces what the flow writes. Run:
``python -m tests.benchmarks.replicate --work DIR --n 15000 [--source OBSID] [--instruments PN] [--out DIR]``
(``DIR`` holds ``archive/``, ``out/`` and ``config.yaml`` (noop's, made if absent); the
copies get the ObsIDs after the highest in ``archive/``, until the archive holds ``n``; what was
made is recorded in ``<out>/replicate-<n>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.benchmarks._common import machine_info, setup_env, write_result

#: Files never copied: another run's lock of the source observation.
_SKIP = {".lock", "manifest.json.lock"}


def _copy_tree(src: Path, dst: Path, old: str, new: str) -> int:
    """Copy ``src`` to ``dst`` with ``old`` rewritten as ``new`` in names and bytes; files copied."""
    n = 0
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        target = dst / Path(str(rel).replace(old, new))
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if name in _SKIP or name == "manifest.json":
                continue
            s = Path(root) / name
            d = target / name.replace(old, new)
            d.write_bytes(s.read_bytes().replace(old.encode(), new.encode()))
            st = s.stat()
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
            n += 1
        dirs.sort()
    return n


def _restamp(layout, obsid: str, config, sas_version: str, manifest):  # type: ignore[no-untyped-def]
    """``manifest`` with each planned call's fingerprint and upstream tokens as a run records them."""
    from daxa_xmm.odf.summary import read_observation_record
    from daxa_xmm.pipeline.identity import record_token, with_upstream
    from daxa_xmm.pipeline.manifest import call_fingerprint
    from daxa_xmm.pipeline.stages import by_unit
    from daxa_xmm.pipeline.walk import observation_input, select_observation_units, walk_observation
    from daxa_xmm.sas.version import parse_sas_version

    def visit(work, base: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
        made: list[str] = []
        for group in by_unit(work):
            mine: list[str] = []
            for item in group:
                call = with_upstream(item, base + mine)
                rec = manifest.get(item.unit, item.step)
                if rec is None:
                    raise RuntimeError(f"{obsid}: no record of {item.step} [{item.unit}]: not a finished observation")
                manifest.records[rec.key] = rec.model_copy(update={
                    "fingerprint": call_fingerprint(manifest, call, sas_version),
                    "upstream": sorted(call.extra.get("upstream", ()))})
                mine.append(record_token(manifest.get(item.unit, item.step)))
            made += mine
        return base + made

    record = read_observation_record(layout.odf_sum_asc(obsid), obs_id=obsid)
    si = observation_input(layout, record, config, parse_sas_version(sas_version))
    walk_observation(si, lambda: select_observation_units(si), visit)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks.replicate", description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True, help="folder of a finished run: archive/, out/")
    ap.add_argument("--n", type=int, required=True, help="observations the archive should hold")
    ap.add_argument("--source", help="the finished observation to copy (default: the first in archive/)")
    ap.add_argument("--instruments", nargs="+", default=["PN"], help="the run's instruments (default PN)")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    ns = ap.parse_args(argv)
    setup_env(ns.work, fast=True)
    from daxa_xmm.config import load_config
    from daxa_xmm.layout import ArchiveLayout
    from daxa_xmm.pipeline.manifest import load_manifest
    from daxa_xmm.sas.environment import detect_sas

    archive, out, config_file = ns.work / "archive", ns.work / "out", ns.work / "config.yaml"
    if not config_file.exists():  # noop.py's settings, which overhead.py --one-band also runs with
        config_file.write_text("images:\n  bands: [['0.5 keV', '2.0 keV']]\nretries: 0\n")
    config = load_config(config_file, archive=archive, out=out, instruments=ns.instruments)
    layout = ArchiveLayout(archive, out)
    sas_version = detect_sas().version.raw
    have = sorted(d.name for d in archive.iterdir() if d.name.isdigit())
    source = ns.source or have[0]
    original = load_manifest(layout.manifest(source), source)
    again = _restamp(layout, source, config, sas_version, original.model_copy(deep=True))
    if again.model_dump(mode="json") != original.model_dump(mode="json"):
        raise SystemExit(f"restamping {source} changed its manifest: the restamping is not what the run records")
    text = layout.manifest(source).read_text()
    next_id = int(have[-1]) + 1
    t, made = time.time(), 0
    while len(have) + made < ns.n:
        new = f"{next_id + made:010d}"
        _copy_tree(archive / source, archive / new, source, new)
        _copy_tree(out / source, out / new, source, new)
        manifest = load_manifest_text(text.replace(source, new), new)
        manifest = _restamp(layout, new, config, sas_version, manifest)
        # as save_manifest writes it, without its fsync (a fixture, not a run's record)
        layout.manifest(new).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")
        made += 1
        if made % 500 == 0:
            print(f"{made} copies of {source} ({time.time() - t:.0f} s)", flush=True)
    took = time.time() - t
    print(f"archive holds {len(have) + made} observations: {made} copies of {source} made in {took:.0f} s")
    write_result(ns.out / f"replicate-{ns.n}.json", {
        "benchmark": "replicate", "machine": machine_info(),
        "command": " ".join(["python -m tests.benchmarks.replicate", *(argv if argv is not None else sys.argv[1:])]),
        "n_observations": len(have) + made, "processed_by_the_flow": len(have), "copies": made, "source": source,
        "copy_s": took})
    return 0


def load_manifest_text(text: str, obsid: str):  # type: ignore[no-untyped-def]
    """The manifest in ``text`` (a copy's, before it is written), checked as :func:`load_manifest` checks it."""
    from daxa_xmm.pipeline.manifest import Manifest

    manifest = Manifest.model_validate_json(text)
    if manifest.obsid != obsid:
        raise RuntimeError(f"copy of the manifest says ObsID {manifest.obsid}, not {obsid}")
    return manifest


if __name__ == "__main__":
    if not __package__:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
