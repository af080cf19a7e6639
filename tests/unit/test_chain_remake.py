"""A chain whose call reads a product the storage policy removed (``InputsRemoved``): the
product is remade once, then the call runs; the calls before it in the chain, done already,
do not run twice (daxa_xmm/pipeline/observation_run.py, issue 33.2)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.observation_run import Chain, Driver
from daxa_xmm.pipeline.step_run import CallOutcome, InputsRemoved, ObsContext
from daxa_xmm.sas.calls import SasCall

OBSID = "0100000001"


def _calls(tmp_path: Path) -> list[SasCall]:
    return [SasCall(step=step, obsid=OBSID, unit=f"{OBSID}PNS003", argv=(step,), cwd=tmp_path)
            for step in ("espfilt", "cleaned_evt_lists", "cleaned_evt_lists_oot")]


class _Driver:
    """Runs calls by name; ``cleaned_evt_lists`` finds its input removed until it is remade."""

    def __init__(self, removed: Path) -> None:
        self.removed, self.ran, self.remade = removed, [], 0

    async def run_call(self, call: SasCall, ctx: ObsContext) -> CallOutcome:
        if call.step == "cleaned_evt_lists" and not self.removed.exists():
            raise InputsRemoved("removed", [self.removed])
        self.ran.append(call.step)
        return CallOutcome(call.step, False, ())

    async def remake(self, paths: Sequence[Path]) -> None:
        self.remade += 1
        if self.remade_ok:
            for p in paths:
                p.write_text("remade")

    remade_ok = True


def _chain(tmp_path: Path, driver: _Driver, with_remake: bool = True) -> Chain:
    ctx = ObsContext(layout=ArchiveLayout(tmp_path / "a", tmp_path / "o"), obsid=OBSID, sas_version="21.0.0", num_cores=1,
                     slots_root=tmp_path / "slots")
    return Chain(ctx, Driver(driver.run_call), remake=driver.remake if with_remake else None)


def test_the_removed_input_is_remade_once_and_nothing_before_it_runs_twice(tmp_path: Path) -> None:
    driver = _Driver(tmp_path / "P0100000001PNS003PIEVLI0000.FIT")
    asyncio.run(_chain(tmp_path, driver).run(_calls(tmp_path)))
    assert driver.remade == 1
    assert driver.ran == ["espfilt", "cleaned_evt_lists", "cleaned_evt_lists_oot"]


def test_a_remake_that_does_not_bring_it_back_fails_the_call_not_loops(tmp_path: Path) -> None:
    driver = _Driver(tmp_path / "P0100000001PNS003PIEVLI0000.FIT")
    driver.remade_ok = False
    with pytest.raises(InputsRemoved):
        asyncio.run(_chain(tmp_path, driver).run(_calls(tmp_path)))
    assert driver.remade == 1 and driver.ran == ["espfilt"]


def test_without_a_way_to_remake_the_call_fails_naming_it(tmp_path: Path) -> None:
    driver = _Driver(tmp_path / "P0100000001PNS003PIEVLI0000.FIT")
    with pytest.raises(InputsRemoved, match="removed"):
        asyncio.run(_chain(tmp_path, driver, with_remake=False).run(_calls(tmp_path)))
    assert driver.remade == 0 and driver.ran == ["espfilt"]
