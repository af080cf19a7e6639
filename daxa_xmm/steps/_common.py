"""What every step builder shares: the SAS environment of a call, config validation errors.

Builders are pure: they compute paths from the layout, never look at the disk or the
process environment. The environment they put on a call is only what SAS needs for this
observation (SAS_CCF, SAS_ODF); the runner adds it to the inherited one.
"""

from __future__ import annotations

__all__ = ["sas_env", "make_config", "FrozenConfig", "work_dir"]

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from daxa_xmm.errors import ConfigError, explain
from daxa_xmm.layout import ArchiveLayout


class FrozenConfig(BaseModel):
    """Base of every step's settings (a section of ProcessingConfig and of the Prefect form):
    immutable, unknown fields refused (a typo is an error)."""

    # field titles are the field names, like the form's top-level parameters (Prefect titles
    # those by name), not pydantic's "Filter Lo En"
    model_config = ConfigDict(frozen=True, extra="forbid", field_title_generator=lambda name, _info: name)


C = TypeVar("C", bound=BaseModel)


def make_config(cls: type[C], /, **values: Any) -> C:
    """Build a config model, turning pydantic's ValidationError into a ConfigError.

    The message names every failing field, e.g. ``EspfiltConfig.smooth: Input should be
    less than or equal to 60``, so a user sees which knob is wrong.
    """
    try:
        return cls(**values)
    except ValidationError as exc:
        raise ConfigError(explain(exc, cls.__name__)) from None


def sas_env(layout: ArchiveLayout, obsid: str, summary: Path) -> dict[str, str]:
    """SAS_CCF (the observation's ccf.cif) and SAS_ODF (its odfingest summary file)."""
    return {"SAS_CCF": str(layout.ccf(obsid)), "SAS_ODF": str(summary)}


def work_dir(layout: ArchiveLayout, obsid: str, unit_label: str, step: str) -> Path:
    """The call's own working folder ``work/<unit>-<step>``: SAS writes outputs into its cwd."""
    return layout.work_dir(obsid, f"{unit_label}-{step}")
