"""What a step declares: its scope, its builder, when it applies (a line of the pipeline's table).

A step's builder is given a :class:`StageInput` (the observation, and the unit, instrument
or band it builds for) and returns its :data:`Work`: SAS calls, in the order they run, and
files to place. The pipeline's table (:mod:`daxa_xmm.pipeline.stages`) is the list of these
lines; this module imports no step, so each step module can declare its own line.
"""

from __future__ import annotations

__all__ = ["Scope", "Copy", "Work", "RunSettings", "StageInput", "Stage"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import ObservationRecord, Unit
from daxa_xmm.sas.calls import SasCall
from daxa_xmm.sas.version import SasVersion

M = TypeVar("M", bound=BaseModel)

Scope = Literal["observation", "unit", "instrument", "band"]


@dataclass(frozen=True)
class Copy:
    """A product placed rather than made by SAS: one sub-exposure's list is the merged list."""

    source: Path
    dest: Path
    unit: str


#: What a stage runs: SAS calls, in order, and files to place.
Work = SasCall | Copy


class RunSettings(Protocol):
    """What a builder reads of the run's settings (:class:`daxa_xmm.config.ProcessingConfig`
    is them): its step's own settings model, and which units the run selects. A protocol,
    not the config itself, because the config's step names and sections come from the
    table, and the table's lines would otherwise import the config."""

    def section(self, model: type[M]) -> M:
        """The run's value of a step's settings model."""
        ...

    @property
    def instruments(self) -> Sequence[str]: ...

    @property
    def process_unscheduled(self) -> bool: ...


@dataclass(frozen=True)
class StageInput:
    """What a stage's builder may read: the observation, and the unit, instrument or band it
    is built for. ``timeout_s``: each call's time limit (the run's ``timeout``; None, no
    limit, only for DAXA's seed plans). ``planning``: the calls are being listed, not run,
    so what earlier calls of the chain write (emanom's verdict on the CCDs) is not read."""

    layout: ArchiveLayout
    config: RunSettings
    sas_version: SasVersion
    record: ObservationRecord
    timeout_s: float | None
    unit: Unit | None = None
    inst: str | None = None
    units: tuple[Unit, ...] = ()
    band: tuple[float, float] | None = None
    planning: bool = False

    @property
    def obsid(self) -> str:
        return self.record.obsid

    @property
    def summary(self) -> Path:
        """The odfingest summary the unit's chains read through SAS_ODF."""
        return self.layout.summary(self.record.obsid, self.record.revolution)

    @property
    def the_unit(self) -> Unit:
        if self.unit is None:
            raise ValueError("a unit stage was built without its unit")
        return self.unit

    @property
    def the_inst(self) -> str:
        inst = self.unit.inst if self.unit is not None else self.inst
        if inst is None:
            raise ValueError("an instrument stage was built without its instrument")
        return inst


def _always(si: StageInput) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One line of the table.

    Attributes:
        name: the step's name, as ``--steps``, ``--force`` and the report know it.
        scope: what it runs once for (see the module's docstring).
        build: its calls (and placements) for one input, in the order they run.
        applies: whether it runs for that input (an instrument, a SAS release, a setting).
        typical_s: a rough typical time of all its calls for one input, relative to the
            other stages: it only orders calls waiting for a SAS slot (:func:`path_s`).
    """

    name: str
    scope: Scope
    build: Callable[[StageInput], Sequence[Work]]
    applies: Callable[[StageInput], bool] = _always
    typical_s: float = 1.0
