"""Looking things up in DAXA's records: the Archive's ``get_failed_processes``,
``get_process_logs``, ``get_process_raw_error_logs`` and ``get_failed_logs``.

Pure functions over the ``[mission][step][key]`` tables of :mod:`daxa_xmm.daxa.records`, so
the matching rules can be tested on plain dicts. They follow DAXA 0.3.7
(``archive/base.py``, ``_fetch_matched_log``): one step at a time; narrowed by mission,
ObsID and instrument, or by whole keys (``full_ident``, which overrides ObsID and
instrument); an instrument filter leaves out the keys that name no instrument (cif_build's
and odf_ingest's, which are bare ObsIDs). Unlike DAXA, a list of ObsIDs is matched as a
list (DAXA wrapped it in another list, so only a single ObsID matched). :class:`DaxaLookups`
puts them on the Archive.
"""

from __future__ import annotations

__all__ = ["DaxaLookups", "failed_processes", "matched_logs", "as_list"]

from collections.abc import Iterable, Mapping
from typing import Any

from daxa_xmm.daxa.records import MISSION, DaxaRecords
from daxa_xmm.errors import ConfigError

#: DAXA's long instrument names, as check_inst_names converts them.
_ALT_NAMES = {"MOS1": "M1", "MOS2": "M2", "RGS1": "R1", "RGS2": "R2"}


def as_list(value: str | Iterable[str] | None) -> list[str] | None:
    """One name or several as a list (None stays None)."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def failed_processes(success: Mapping[str, Mapping[str, Mapping[str, bool]]], process_name: str) -> dict[str, list[str]]:
    """``{mission: [key, ...]}`` of the keys that failed ``process_name``; a mission with no
    failure is left out, as in DAXA."""
    out: dict[str, list[str]] = {}
    for mission, steps in success.items():
        failed = [key for key, ok in steps.get(process_name, {}).items() if not ok]
        if failed:
            out[mission] = failed
    return out


def matched_logs(
    table: Mapping[str, Mapping[str, Mapping[str, Any]]],
    process_name: str,
    mission_names: list[str],
    mission_name: str | Iterable[str] | None = None,
    obs_id: str | Iterable[str] | None = None,
    inst: str | Iterable[str] | None = None,
    full_ident: str | Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{mission: {key: entry}}`` of ``table``'s entries for ``process_name`` that match.

    Args:
        table: a records table (logs, raw errors...).
        process_name: the step.
        mission_names: the archive's missions (others are refused).
        mission_name: only these missions.
        obs_id: only these ObsIDs.
        inst: only keys naming one of these instruments (PN, M1, MOS1...).
        full_ident: only these whole keys, e.g. ``0201903501PNS003``; overrides obs_id and inst.

    Raises:
        ConfigError: a mission not in the archive.
    """
    missions = as_list(mission_name)
    bad = [m for m in missions or [] if m not in mission_names]
    if bad:
        raise ConfigError(f"Some missions ({', '.join(bad)}) are not associated with this archive; "
                          f"{', '.join(mission_names)} are associated.")
    idents = as_list(full_ident)
    obsids = None if idents is not None else as_list(obs_id)
    insts = None if idents is not None else as_list(inst)
    if insts is not None:
        insts = [_ALT_NAMES.get(i.upper(), i.upper()) for i in insts]
    out: dict[str, dict[str, Any]] = {}
    for mission, steps in table.items():
        if process_name not in steps or (missions is not None and mission not in missions):
            continue
        found = out.setdefault(mission, {})
        for key, entry in steps[process_name].items():
            obsid = key[:10]
            if idents is not None:
                keep = key in idents
            else:
                keep = obsids is None or obsid in obsids
                if insts is not None:
                    keep = keep and key != obsid and key[10:12] in insts
            if keep:
                found[key] = entry
    return out


class DaxaLookups:
    """The Archive's DAXA look-ups in its records (a base of
    :class:`~daxa_xmm.daxa.archive.Archive`, which reads the records)."""

    def records(self, logs: bool = False) -> DaxaRecords:
        """Every record (the Archive reads them from the products folder)."""
        raise NotImplementedError

    @property
    def mission_names(self) -> list[str]:
        return [MISSION]

    @property
    def raw_process_errors(self) -> dict:
        """``[mission][step][key]``: the whole stderr of the keys that failed (DAXA's raw
        errors; read from the calls' ``logs/*.stderr.log``)."""
        return self.records(logs=True).raw_errors

    @property
    def process_names(self) -> dict[str, list[str]]:
        """``{mission: [step, ...]}``: the steps that ran on this archive, in DAXA's order."""
        return {m: list(steps) for m, steps in self.records().success.items()}

    def get_failed_processes(self, process_name: str) -> dict[str, list[str]]:
        """``{mission: [key, ...]}``: the keys that failed ``process_name`` (missions without
        a failure left out)."""
        return failed_processes(self.records().success, process_name)

    def get_process_logs(self, process_name: str, mission_name: str | list[str] | None = None, obs_id: str | list[str] | None = None,
                         inst: str | list[str] | None = None, full_ident: str | list[str] | None = None) -> dict:
        """``{mission: {key: stdout}}`` of one step, narrowed as DAXA does
        (:func:`daxa_xmm.daxa.matched_logs`)."""
        return matched_logs(self.records(logs=True).logs, process_name, self.mission_names, mission_name, obs_id, inst, full_ident)

    def get_process_raw_error_logs(self, process_name: str, mission_name: str | list[str] | None = None,
                                   obs_id: str | list[str] | None = None, inst: str | list[str] | None = None,
                                   full_ident: str | list[str] | None = None) -> dict:
        """``{mission: {key: stderr}}`` of one step's failed keys, narrowed as get_process_logs."""
        return matched_logs(self.raw_process_errors, process_name, self.mission_names, mission_name, obs_id, inst,
                                         full_ident)

    def get_failed_logs(self, process_name: str) -> tuple[dict, dict]:
        """The stdout and the stderr of every key that failed ``process_name``."""
        records = self.records(logs=True)
        failed = failed_processes(records.success, process_name)
        idents = [k for keys in failed.values() for k in keys]
        names = list(failed)
        return (matched_logs(records.logs, process_name, self.mission_names, names, full_ident=idents),
                matched_logs(records.raw_errors, process_name, self.mission_names, names, full_ident=idents))
