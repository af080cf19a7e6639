"""DAXA's tutorial, processing_xmm_pointed.ipynb, on the demo archive (run: python docs/daxa_walkthrough.py).

In DAXA's order: the one-line solution (``full_process_xmm``) on one archive, then the twelve
step functions one by one on another products folder of the same ODFs, then the records
and the look-ups of DAXA's archives tutorial. The only changes from DAXA's notebook are the
import line and where the ODFs are (a local folder, instead of a download). Each call runs
as a Prefect flow run and leaves its records in the products folder.
"""

from pathlib import Path

import astropy.units as u

from daxa_xmm.standin.install import setup_demo

# The demo: three synthetic observations and the SAS stand-in on PATH (no SAS needed).
# On a real archive, set SAS up in the shell first and skip this line.
odf_folder = setup_demo(Path("daxa-demo"))

# -- from here on, DAXA's tutorial; was: from daxa.mission import XMMPointed, from daxa.archive
#    import Archive, from daxa.process.simple import full_process_xmm, from daxa.process.xmm... import ...
from flows.daxa_steps import (  # noqa: E402
    Archive,
    XMMPointed,
    cif_build,
    cleaned_evt_lists,
    cleaned_rgs_event_lists,
    emanom,
    emchain,
    epchain,
    espfilt,
    full_process_xmm,
    generate_images_expmaps,
    merge_subexposures,
    odf_ingest,
    rgs_angles,
    rgs_events,
)

INSTS = ["PN", "M1", "M2", "R1", "R2"]

# -- the one-line solution, on an archive built as DAXA builds it: daxa-demo/daxa_output/archives/one_line/
xm = XMMPointed(insts=INSTS, odf_folder=odf_folder)  # was: XMMPointed(insts=...) and a download
one_line = Archive("one_line", xm, output="daxa-demo/daxa_output")
full_process_xmm(one_line)
print("one line:", {step: len(flags) for step, flags in one_line.process_success["xmm_pointed"].items()})

# -- step by step, each with its own settings, into another products folder
arch = Archive.from_folders(odf_folder, "daxa-demo/daxa-steps", instruments=INSTS)

cif_build(arch)
odf_ingest(arch)
epchain(arch, timeout=2 * u.h)
emchain(arch)
rgs_events(arch)
rgs_angles(arch)
cleaned_rgs_event_lists(arch)
emanom(arch)
espfilt(arch)
cleaned_evt_lists(arch, filt_mos_anom_state=True)
merge_subexposures(arch)
generate_images_expmaps(arch, lo_en=[0.5, 2.0] * u.keV, hi_en=[2.0, 10.0] * u.keV)

# -- DAXA's records, under DAXA's keys: [mission][step][ObsID+instrument+exposure]
for step, flags in arch.process_success["xmm_pointed"].items():
    failed = [key for key, ok in flags.items() if not ok]
    print(f"{step:<26} {len(flags) - len(failed)} ok" + (f", failed: {', '.join(failed)}" if failed else ""))
print("same steps and keys as the one-line run:",
      {s: sorted(f) for s, f in arch.process_success["xmm_pointed"].items()}
      == {s: sorted(f) for s, f in one_line.process_success["xmm_pointed"].items()})
# as in DAXA, every step that ran has its dict of errors, {} when nothing failed
print("errors:", {step: errs for step, errs in arch.process_errors["xmm_pointed"].items() if errs} or "none")
print("final:", arch.final_process_success["xmm_pointed"])

# -- DAXA's look-ups: the mission's observation table (read from the ODFs), where the data
#    are, and the logs (all of one ObsID's PN espfilt; those of the units that failed)
print(arch["xmm_pointed"].filtered_obs_info["ObsID", "start", "duration", "target", "instruments"])
first = arch.obsids[0]
print("data of", first, "in", arch.get_current_data_path("xmm_pointed", first))
pn_logs = arch.get_process_logs("espfilt", obs_id=first, inst="PN")["xmm_pointed"]
print("espfilt PN logs of", first, ":", {key: f"{len(text)} characters" for key, text in pn_logs.items()})
print("failed espfilt:", arch.get_failed_processes("espfilt") or "none")
logs, errors = arch.get_failed_logs("espfilt")
print("their stdout and stderr:", {m: list(keys) for m, keys in logs.items()} or "none")
