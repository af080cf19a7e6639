"""DAXA's look-ups in the records (daxa_xmm/daxa/archive_logs.py), on plain tables."""

from __future__ import annotations

import pytest

from daxa_xmm.daxa.archive_logs import failed_processes, matched_logs
from daxa_xmm.errors import ConfigError

A, B = "0201903501", "0201903502"
LOGS = {"xmm_pointed": {
    "cif_build": {A: "cif a", B: "cif b"},
    "espfilt": {f"{A}PNS003": "pn a", f"{A}M1S001": "m1 a", f"{B}M2S002": "m2 b"},
}}
SUCCESS = {"xmm_pointed": {"cif_build": {A: True, B: True}, "espfilt": {f"{A}PNS003": False, f"{A}M1S001": True, f"{B}M2S002": False}}}


def _keys(found: dict) -> set[str]:
    return set(found["xmm_pointed"])


@pytest.mark.parametrize(("kwargs", "keys"), [
    ({}, set(LOGS["xmm_pointed"]["espfilt"])),
    ({"obs_id": A}, {f"{A}PNS003", f"{A}M1S001"}),
    ({"obs_id": [A, B]}, set(LOGS["xmm_pointed"]["espfilt"])),  # a list is a list (DAXA wrapped it again)
    ({"inst": "MOS1"}, {f"{A}M1S001"}),
    ({"inst": ["PN", "M2"], "obs_id": B}, {f"{B}M2S002"}),
    ({"full_ident": f"{A}PNS003", "obs_id": B}, {f"{A}PNS003"}),  # whole keys override the rest
])
def test_logs_are_narrowed_as_daxa_narrows_them(kwargs: dict, keys: set[str]) -> None:
    assert _keys(matched_logs(LOGS, "espfilt", ["xmm_pointed"], **kwargs)) == keys


def test_an_instrument_leaves_out_keys_that_name_none() -> None:
    assert matched_logs(LOGS, "cif_build", ["xmm_pointed"], inst="PN") == {"xmm_pointed": {}}
    assert matched_logs(LOGS, "cif_build", ["xmm_pointed"], obs_id=B) == {"xmm_pointed": {B: "cif b"}}


def test_a_step_that_never_ran_finds_nothing_and_a_foreign_mission_is_refused() -> None:
    assert matched_logs(LOGS, "emanom", ["xmm_pointed"]) == {}
    with pytest.raises(ConfigError, match="erosita_calpv"):
        matched_logs(LOGS, "espfilt", ["xmm_pointed"], mission_name="erosita_calpv")


def test_failed_processes_lists_the_failed_keys_of_a_step() -> None:
    assert failed_processes(SUCCESS, "espfilt") == {"xmm_pointed": [f"{A}PNS003", f"{B}M2S002"]}
    assert failed_processes(SUCCESS, "cif_build") == {}
