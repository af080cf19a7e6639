"""DAXA 0.3.7's own XMM processing of a local archive: the other side of the side-by-side
benchmark (``three_cases --daxa-python``).

It runs under a Python where DAXA 0.3.7 is installed, not this project's, and imports nothing
of this project. DAXA 0.3.7 needs Python 3.12 or later (``daxa/archive/base.py`` holds an
f-string over two lines) and, for its image step, xga 0.6.3 (1.0 has no ``xga.sas``) with an
astropy that still has ``astropy.cosmology.core`` (7.2)::

    python3.12 -m venv DAXA_VENV
    DAXA_VENV/bin/pip install daxa==0.3.7 xga==0.6.3 astropy==7.2.3

Run with the SAS stand-in's (or SAS's) variables set, in an empty folder, which DAXA takes
for its output (its default ``daxa_save_path`` is ``daxa_output/`` under the current folder)::

    DAXA_VENV/bin/python tests/benchmarks/daxa_run.py --odfs ARCHIVE --cores 2 --result daxa.json

Offline, as a user with downloaded ODFs would be: XMMPointed's observation table, which DAXA
asks the XMM archive for, is read from each observation's ODF summary (``*SUM.ASC``: ObsID,
revolution, start and end), and each ODF is linked where DAXA keeps downloaded raw data
(``xmm_pointed_raw/<ObsID>/``, the files of the chosen instruments, SC and the manifest, as
``XMMPointed._download_call`` keeps them), so that ``download()`` finds every ObsID there.
The steps are a DAXA user's, in ``daxa.process.simple.full_process_xmm``'s order, with emanom
(which our flow runs too; ``full_process_xmm`` leaves it out by default) and one image band
(0.5-2 keV), as in the three cases' configuration.
"""

from __future__ import annotations

import time

STARTED = time.time()

import argparse  # noqa: E402 - the start time first
import json  # noqa: E402
import os  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

INSTRUMENTS = ["PN", "M1", "M2"]


def observation_table(odfs: Path) -> Any:
    """The table ``XMMPointed._fetch_obs_info`` builds from the archive's answer, from the
    ODF summaries. The synthetic ODFs have no pointing: RA and Dec are placeholders."""
    import pandas as pd

    rows = []
    for i, folder in enumerate(sorted(p for p in odfs.iterdir() if p.is_dir())):
        summary = next(folder.glob("*SUM.ASC"))
        lines = [line.split(" / ")[0].strip() for line in summary.read_text().splitlines()]
        k = lines.index("OBSERVATION")
        obsid, revolution, start, end = lines[k + 1:k + 5]
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        rows.append({"ra": 150.0 + i, "dec": 2.0, "ObsID": obsid, "start": start, "science_usable": True,
                     "duration": end - start, "proprietary_end_date": start + pd.Timedelta(days=365),
                     "revolution": int(revolution), "proprietary_usable": True, "end": end})
    return pd.DataFrame(rows)


def link_raw(odfs: Path, raw: Path, obsids: list[str]) -> None:
    for obsid in obsids:
        (raw / obsid).mkdir(parents=True)
        for f in (odfs / obsid).iterdir():
            if "MANIFEST" in f.name or f.name.partition(f"{obsid}_")[2][:2] in [*INSTRUMENTS, "SC"]:
                os.link(f, raw / obsid / f.name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--odfs", type=Path, required=True, help="the archive: one ODF folder per ObsID")
    ap.add_argument("--cores", type=int, required=True, help="DAXA's num_cores")
    ap.add_argument("--result", type=Path, required=True, help="where the steps' times and outcomes go (JSON)")
    ns = ap.parse_args(argv)

    from astropy.units import Quantity
    from daxa import OUTPUT
    from daxa.archive import Archive
    from daxa.mission import XMMPointed
    from daxa.process.xmm.assemble import cleaned_evt_lists, emchain, epchain, merge_subexposures
    from daxa.process.xmm.check import emanom
    from daxa.process.xmm.clean import espfilt
    from daxa.process.xmm.generate import generate_images_expmaps
    from daxa.process.xmm.setup import cif_build, odf_ingest

    result: dict[str, Any] = {"started": STARTED, "imported": time.time(), "daxa_output": OUTPUT, "steps": []}
    table = observation_table(ns.odfs.resolve())

    class LocalXMMPointed(XMMPointed):  # type: ignore[misc,valid-type]
        def _fetch_obs_info(self) -> None:
            self.all_obs_info = table.copy()

    link_raw(ns.odfs.resolve(), Path(OUTPUT) / "xmm_pointed_raw", list(table["ObsID"]))
    archive = Archive("side_by_side", LocalXMMPointed(insts=INSTRUMENTS), clobber=True)

    def images(arch: Any, num_cores: int) -> None:
        generate_images_expmaps(arch, lo_en=Quantity([0.5], "keV"), hi_en=Quantity([2.0], "keV"),
                                num_cores=num_cores)

    steps: list[tuple[str, Callable[..., Any]]] = [
        ("cif_build", cif_build), ("odf_ingest", odf_ingest), ("epchain", epchain), ("emchain", emchain),
        ("emanom", emanom), ("espfilt", espfilt), ("cleaned_evt_lists", cleaned_evt_lists), ("merge_subexposures", merge_subexposures),
        ("generate_images_expmaps", images),
    ]
    for name, step in steps:
        entry: dict[str, Any] = {"step": name, "start": time.time()}
        try:
            step(archive, num_cores=ns.cores)
        except Exception as exc:  # noqa: BLE001 - DAXA raises when any observation failed; go on, as a user would
            entry["error"] = "".join(traceback.format_exception_only(exc)).strip()[-2000:]
        entry["end"] = time.time()
        done = archive.process_success["xmm_pointed"].get(name, {})
        entry["ok"], entry["failed"] = sum(map(bool, done.values())), sum(not v for v in done.values())
        result["steps"].append(entry)
    result["ended"] = time.time()
    ns.result.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
