"""A DAXA notebook, step by step, on the demo archive (run: python docs/daxa_walkthrough.py).

The only changes from a DAXA notebook are the import line and how the Archive is made
(from a folder of ODFs and a products folder, instead of a download). Each call runs its
step over the archive as a Prefect flow run and leaves its records in the products folder.
"""

from pathlib import Path

import astropy.units as u

from daxa_xmm.standin.install import setup_demo

# The demo: three synthetic observations and the SAS stand-in on PATH (no SAS needed).
# On a real archive, set SAS up in the shell first and skip this line.
odf_folder = setup_demo(Path("daxa-demo"))

# -- from here on, a DAXA notebook; was: from daxa.process.xmm import ...
from flows.daxa_steps import (  # noqa: E402
    Archive,
    cif_build,
    cleaned_evt_lists,
    cleaned_rgs_event_lists,
    emanom,
    emchain,
    epchain,
    espfilt,
    generate_images_expmaps,
    merge_subexposures,
    odf_ingest,
    rgs_angles,
    rgs_events,
)

arch = Archive.from_folders(odf_folder, "daxa-demo/daxa-steps", instruments=["PN", "M1", "M2", "R1", "R2"])

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

# DAXA's records, under DAXA's keys: [mission][step][ObsID+instrument+exposure]
for step, flags in arch.process_success["xmm_pointed"].items():
    failed = [key for key, ok in flags.items() if not ok]
    print(f"{step:<26} {len(flags) - len(failed)} ok" + (f", failed: {', '.join(failed)}" if failed else ""))
# as in DAXA, every step that ran has its dict of errors, {} when nothing failed
print("errors:", {step: errs for step, errs in arch.process_errors["xmm_pointed"].items() if errs} or "none")
print("final:", arch.final_process_success["xmm_pointed"])

# DAXA's look-ups: the mission's observation table (read from the ODFs) and the failed units' logs
print(arch["xmm_pointed"].filtered_obs_info["ObsID", "start", "duration", "target", "instruments"])
print("failed espfilt:", arch.get_failed_processes("espfilt") or "none")
