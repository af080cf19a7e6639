"""What a step declares: its scope, its builder, when it applies (a line of the pipeline's table).

A step's builder is given a :class:`StageInput` (the observation, and the unit, instrument
or band it builds for) and returns its calls, in the order they run (a
file the pipeline places itself is a call too: :attr:`~daxa_xmm.sas.calls.SasCall.placed_from`).
The pipeline's table (:mod:`daxa_xmm.pipeline.stages`) is the list of these lines; this
module imports no step, so each step module can declare its own line.
"""

from __future__ import annotations

__all__ = ["Scope", "RunSettings", "StageInput", "Section", "DaxaFunction", "Stage", "on_instruments"]

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


def on_instruments(*insts: str) -> Callable[[StageInput], bool]:
    """``applies`` of a stage that runs for these instruments only."""
    return lambda si: si.the_inst in insts


@dataclass(frozen=True)
class Section:
    """A step's settings: the section ``name`` of the run's settings (``espfilt:`` in a
    config file, ``--espfilt.smooth`` on the command line, a group of the Prefect form),
    holding ``model``; ``description`` is the section's one-line help."""

    name: str
    model: type[BaseModel]
    description: str


@dataclass(frozen=True)
class DaxaFunction:
    """A DAXA step function (``daxa.process.xmm``) that runs (part of) this step.

    ``needs``: the DAXA functions that must have run first (any one of them: espfilt needs
    PN's or MOS's lists). ``calls``: the step's call names it runs, when not all of them
    (rgsproc's three stages are three DAXA functions)."""

    name: str
    needs: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One line of the table: everything the pipeline knows of a step is declared here,
    in the step's module, and every list of steps is derived from the table.

    Attributes:
        name: the step's name, as ``--steps``, ``--force`` and the report know it.
        scope: what it runs once for (see :mod:`daxa_xmm.pipeline.stages`).
        build: its calls (and placements) for one input, in the order they run.
        applies: whether it runs for that input (an instrument, a SAS release, a setting).
        typical_s: a rough typical time of all its calls for one input, relative to the
            other stages: it only orders calls waiting for a SAS slot
            (:func:`daxa_xmm.pipeline.stages.path_s`).
        calls: the names its calls carry (``SasCall.step``), when other than ``name``; a
            numbered ``<name>_<n>`` needs no entry.
        sas_tasks: the SAS tasks its calls run (``argv[0]``), each one the stand-in provides.
        section: its settings, when it has its own (cifbuild reads the top-level
            ``analysis_date`` instead: :meth:`RunSettings.section`).
        daxa: the DAXA step functions of this step, in the order a notebook calls them.
        intermediate: its products are what later steps filter, not what users analyse (the
            chains' raw event lists): ``--storage final`` removes them once the observation
            is finished (:mod:`daxa_xmm.pipeline.storage`).
    """

    name: str
    scope: Scope
    build: Callable[[StageInput], Sequence[SasCall]]
    applies: Callable[[StageInput], bool] = _always
    typical_s: float = 1.0
    calls: tuple[str, ...] = ()
    sas_tasks: tuple[str, ...] = ()
    section: Section | None = None
    daxa: tuple[DaxaFunction, ...] = ()
    intermediate: bool = False

    @property
    def call_names(self) -> tuple[str, ...]:
        return self.calls or (self.name,)
