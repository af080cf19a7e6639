"""Typed facts about an observation: its summary file and its processing units.

These are the pydantic models at the edge between files on disk and the rest of the core.
:func:`daxa_xmm.odf.summary.parse_odf_sum` fills them; unit selection and the call builders read
them.
"""

from __future__ import annotations

__all__ = [
    "INSTRUMENTS",
    "EPIC",
    "FILE_INST",
    "ObservationRecord",
    "ExposureInfo",
    "InstrumentInfo",
    "OdfSummary",
    "Unit",
]

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

#: Instrument ids as the ODF and odfingest write them.
INSTRUMENTS: tuple[str, ...] = ("PN", "M1", "M2", "R1", "R2", "OM")
#: The instruments that make processing units (sub-exposures), in the order DAXA lists them.
UnitInstrument = Literal["PN", "M1", "M2", "R1", "R2"]
UNIT_INSTRUMENTS: tuple[UnitInstrument, ...] = get_args(UnitInstrument)
#: EPIC cameras, which have events, espfilt, images.
EPIC: tuple[str, ...] = UNIT_INSTRUMENTS[:3]
#: Lower-case instrument names used in product file names (as DAXA and espfilt write them).
FILE_INST: dict[str, str] = {"PN": "pn", "M1": "mos1", "M2": "mos2", "R1": "rgs1", "R2": "rgs2", "OM": "om"}


class ObservationRecord(BaseModel):
    """The OBSERVATION record, plus who wrote the summary."""

    model_config = ConfigDict(frozen=True)

    obsid: str = Field(pattern=r"^\d{10}$", description="10-digit ObsID")
    revolution: str = Field(pattern=r"^\d{4}$", description="4-digit revolution number")
    start: datetime = Field(description="observation start time (UTC)")
    end: datetime = Field(description="observation end time (UTC)")
    sas_version: str | None = Field(None, description="SAS manifest of the odfingest that wrote it")
    odfingest_version: str | None = None


class ExposureInfo(BaseModel):
    """One EXPOSURE record and its CONFIGURATION record."""

    model_config = ConfigDict(frozen=True)

    exp_id: str = Field(pattern=r"^[SUX]\d{3}$", description="e.g. S003 or U002")
    scheduled: bool
    type: str = Field(description="Exposure Type, e.g. SCIENCE")
    mode: str = Field(description="instrument MODE, e.g. PrimeFullWindow; UNDEFINED if absent")
    filter: str = Field("UNDEFINED", description="FILTER, UNDEFINED when the record has none")
    ccd_modes: dict[int, str] = Field(default_factory=dict, description="CCD -> DATA_MODE")
    start: datetime | None = None
    end: datetime | None = None


class InstrumentInfo(BaseModel):
    """One INSTRUMENT record with its exposures, keyed by exposure id."""

    model_config = ConfigDict(frozen=True)

    name: str
    active: bool
    num_exp: int
    exposures: dict[str, ExposureInfo] = Field(default_factory=dict)


class OdfSummary(BaseModel):
    """Everything parse_odf_sum reads from an odfingest summary file."""

    model_config = ConfigDict(frozen=True)

    path: str
    observation: ObservationRecord
    instruments: dict[str, InstrumentInfo]
    files: tuple[str, ...] = ()

    def to_daxa_dict(self) -> dict:
        """DAXA's nested dict: inst -> {active, num_exp, exposures -> {exp: {...}}}."""
        return {
            name: {
                "active": inst.active,
                "num_exp": inst.num_exp,
                "exposures": {
                    exp_id: {
                        "scheduled": e.scheduled,
                        "type": e.type,
                        "mode": e.mode,
                        # DAXA: None when the summary has no FILTER line (the core says UNDEFINED)
                        "filter": None if e.filter == "UNDEFINED" else e.filter,
                        "ccd_modes": dict(e.ccd_modes),
                    }
                    for exp_id, e in inst.exposures.items()
                },
            }
            for name, inst in self.instruments.items()
        }


class Unit(BaseModel):
    """One processing unit: an (ObsID, instrument, sub-exposure) one SAS call covers.

    ``ccds`` is the imaging CCD list: what epchain gets for PN; informational for MOS; empty
    for RGS.
    """

    model_config = ConfigDict(frozen=True)

    obsid: str = Field(pattern=r"^\d{10}$")
    inst: UnitInstrument
    exp_id: str = Field(pattern=r"^[SUX]\d{3}$")
    mode: str = "UNDEFINED"
    filter: str = "UNDEFINED"
    ccds: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """DAXA's unit label, e.g. ``0201903501PNS003``."""
        return f"{self.obsid}{self.inst}{self.exp_id}"

    @property
    def file_inst(self) -> str:
        """``pn``, ``mos1``... as espfilt and product names write it."""
        return FILE_INST[self.inst]

    @property
    def exp_number(self) -> str:
        """The three digits SAS's ``exposure=`` parameter takes."""
        return self.exp_id[1:]

    @property
    def schedule(self) -> str:
        """``S`` or ``U``, for epchain's ``schedule=``."""
        return self.exp_id[0]
