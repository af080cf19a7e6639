"""DAXA's ``process_extra_info``, under DAXA's keys, derived from the layout and the manifest.

DAXA stores, for every key a step ran for, the paths of what it makes (DAXA 0.3.7,
``process/xmm/*.py``, the ``miss_extras`` of each step, less ``working_dir``, which the
Archive drops): cif_build ``obs_date`` and ``analysis_date``; odf_ingest ``sum_path``;
epchain ``evt_list`` and ``oot_evt_list``; emchain and rgs_events ``evt_list``; rgs_angles
nothing; cleaned_rgs_event_lists ``evt_clean_path``; emanom ``log_path``; espfilt
``all_good_evts``, ``gti_path``, ``hist_path`` (PN also ``all_good_oot_evts``);
cleaned_evt_lists ``evt_clean_path`` and ``en_key`` (PN also ``oot_evt_clean_path``);
merge_subexposures ``final_evt`` and ``final_allgood_evt`` (PN also ``final_oot_evt`` and
``final_allgood_oot_evt``). DAXA's generate_images_expmaps kept no records; here it gets
``{band: {"image": ..., "expmap": ...}}``, bands named as in its unit labels.

The paths are daxa-xmm's own (:class:`~daxa_xmm.layout.ArchiveLayout`), which name files as
SAS and the archive flow do, not as DAXA renamed them. Being derived from the layout and the
manifest records' facts, they are there for what the command line made as much as for what
the step functions made.
"""

from __future__ import annotations

__all__ = ["daxa_extra_info", "en_key"]

import re
from collections.abc import Mapping
from typing import Any

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.steps._common import work_dir

_PI_RANGE = re.compile(r"\(PI in \[(\d+):(\d+)\]\)")


def en_key(expression: str | None) -> str:
    """DAXA's ``en_key`` of a cleaning: ``_{lo}_{hi}keV`` when the lists were cut to an energy
    range (read back from the evselect expression's ``(PI in [lo:hi])``, PI in eV), else ``""``."""
    found = _PI_RANGE.search(expression or "")
    if found is None:
        return ""
    lo, hi = (int(g) / 1000.0 for g in found.groups())
    return f"_{lo}_{hi}keV"


def _split(key: str) -> tuple[str, str, str]:
    """ObsID, instrument and exposure of a DAXA key (the parts it has; others empty)."""
    return key[:10], key[10:12], key[12:]


def _str(path: Any) -> str | None:
    return None if path is None else str(path)


def daxa_extra_info(layout: ArchiveLayout, step: str, key: str, facts: Mapping[str, Any], part: str | None = None) -> dict[str, Any]:
    """DAXA's extra info of ``key`` for ``step`` (see the module docstring).

    Args:
        layout: where the products are.
        step: the DAXA step.
        key: DAXA's key (ObsID, ObsID+instrument, ObsID+instrument+exposure).
        facts: the manifest facts of one of the key's calls (cifbuild's dates, the
            cleaning's expression, an image's ``band_ev``).
        part: what the call's unit label adds to the key (an image's band, ``0.5-2.0keV``).
    """
    obsid, inst, exp = _split(key)
    if step == "cif_build":
        return {"obs_date": facts.get("observation_date"), "analysis_date": facts.get("analysis_date")}
    if step == "odf_ingest":
        return {"sum_path": _str(layout.find_summary(obsid))}
    if step == "epchain":
        return {"evt_list": str(layout.pn_events(obsid, exp)), "oot_evt_list": str(layout.pn_events(obsid, exp, oot=True))}
    if step == "emchain":
        return {"evt_list": str(layout.mos_events(obsid, inst, exp))}
    if step == "rgs_events":
        from daxa_xmm.layout import rgs_merged_name

        return {"evt_list": str(work_dir(layout, obsid, key, "rgsproc") / rgs_merged_name(obsid, inst, exp))}
    if step == "cleaned_rgs_event_lists":
        return {"evt_clean_path": str(layout.rgs_events(obsid, inst, exp))}
    if step == "emanom":
        return {"log_path": str(layout.emanom_log(obsid, inst, exp))}
    if step == "espfilt":
        info = {"all_good_evts": str(layout.espfilt_allevc(obsid, inst, exp))}
        if inst == "PN":
            info["all_good_oot_evts"] = str(layout.espfilt_allevc(obsid, inst, exp, oot=True))
        return {**info, "gti_path": str(layout.espfilt_gti(obsid, inst, exp)), "hist_path": str(layout.espfilt_hist(obsid, inst, exp))}
    if step == "cleaned_evt_lists":
        info = {"evt_clean_path": str(layout.clean_events(obsid, inst, exp)), "en_key": en_key(facts.get("expression"))}
        if inst == "PN":
            info["oot_evt_clean_path"] = str(layout.clean_events(obsid, inst, exp, oot=True))
        return info
    if step == "merge_subexposures":
        info = {"final_evt": str(layout.merged_events(obsid, inst, "clean"))}
        if inst == "PN":
            info["final_oot_evt"] = str(layout.merged_events(obsid, inst, "clean_oot"))
        info["final_allgood_evt"] = str(layout.merged_events(obsid, inst, "allevc"))
        if inst == "PN":
            info["final_allgood_oot_evt"] = str(layout.merged_events(obsid, inst, "allevcoot"))
        return info
    if step == "generate_images_expmaps" and part and len(facts.get("band_ev") or ()) == 2:
        lo, hi = (float(v) for v in facts["band_ev"])
        return {part: {"image": str(layout.image(obsid, inst, lo, hi)), "expmap": str(layout.expmap(obsid, inst, lo, hi))}}
    return {}

