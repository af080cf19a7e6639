"""Energies and times as settings: one rule for reading them, one way of showing them.

A setting's value is an astropy Quantity, checked by physical type: ``"0.5 keV"``, ``"2 h"``
or a Quantity. A value without a unit is refused, whatever its form (``5``, ``"5"``): a
bare 0.5 could be keV or eV, and DAXA crashed on bare numbers. The error names the setting
(pydantic adds the field's path; :func:`to_value` takes a name). A setting is shown, in the
Prefect form, the run-settings artifact and a dumped config, as the text it is typed as
("2500 eV").

Use the annotated types in models: ``binsize: Time = Field("60 s", ...)``, with bounds as
``Annotated[Quantity, Physical("s", minimum=1)]``.
"""

from __future__ import annotations

__all__ = ["Physical", "Energy", "Time", "to_value", "quantity", "show", "MAX_ENERGY_EV"]

import math
from dataclasses import dataclass
from typing import Annotated, Any

from astropy import units as u
from astropy.units import Quantity
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from daxa_xmm.errors import ConfigError

#: EPIC PI is in eV, a 15-bit channel: an energy outside (0, 32767] eV selects nothing.
MAX_ENERGY_EV = 32767.0

_EXAMPLE = {"eV": "0.5 keV", "s": "2 h"}


def quantity(value: Any, unit: str, name: str) -> Quantity:
    """``value`` as a scalar Quantity convertible to ``unit``.

    Raises:
        ConfigError: naming ``name``, for a value without a unit, text that is not a
            quantity, or another physical type.
    """
    example = _EXAMPLE.get(unit, f"1 {unit}")
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and _is_number(value)):
        raise ConfigError(f"{name}: {value!r} has no unit; write it like '{example}'")
    try:
        q = value if isinstance(value, Quantity) else Quantity(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {value!r} is not a quantity like '{example}' ({exc})") from None
    if not q.isscalar:
        raise ConfigError(f"{name}: {value!r} must be a single value, like '{example}'")
    if q.unit == u.dimensionless_unscaled:
        raise ConfigError(f"{name}: {value!r} has no unit; write it like '{example}'")
    try:
        q.to(unit)
    except u.UnitConversionError:
        raise ConfigError(f"{name}: {value!r} is a {q.unit.physical_type}, not a quantity convertible to {unit}") from None
    return q


def to_value(value: Any, unit: str, name: str) -> float:
    """``value`` (see :func:`quantity`) in ``unit``, as a float."""
    return float(quantity(value, unit, name).to_value(unit))


def show(q: Quantity) -> str:
    """``2500 eV``, ``0.5 keV``, ``2 h``: the value as typed, in its own unit."""
    return f"{q.value:g} {q.unit.to_string()}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Physical:
    """Pydantic metadata for a Quantity setting: its unit, and bounds in that unit.

    ``minimum`` is inclusive and ``above`` exclusive; both must be finite numbers.
    """

    unit: str
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    range_text: str = ""  # said of a value out of bounds instead of the bound it broke

    def check(self, value: Any, name: str = "value") -> Quantity:
        q = quantity(value, self.unit, name)
        x = float(q.to_value(self.unit))
        if not math.isfinite(x):
            raise ConfigError(f"{name}: {value!r} must be finite")
        for bound, ok, word in ((self.minimum, lambda b: x >= b, "at least"), (self.above, lambda b: x > b, "above"),
                                (self.maximum, lambda b: x <= b, "at most")):
            if bound is not None and not ok(bound):
                why = self.range_text or f"must be {word} {bound:g} {self.unit}"
                raise ConfigError(f"{name}: {value!r} {why}")
        q = Quantity(q, copy=True)  # a setting's value is shared (defaults, frozen models): read-only
        q.flags.writeable = False
        return q

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> Quantity:
            try:
                return self.check(value)
            except ConfigError as exc:  # pydantic prefixes the field's path
                raise ValueError(str(exc).removeprefix("value: ")) from None

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(show, when_used="always"))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {"type": "string", "description": f"a quantity in {self.unit} or a compatible unit, e.g. '{_EXAMPLE.get(self.unit, self.unit)}'"}


#: An energy of EPIC: above 0 and at most 32.767 keV (PI is 15 bits of eV).
Energy = Annotated[Quantity, Physical("eV", above=0, maximum=MAX_ENERGY_EV,
                                      range_text=f"is outside the EPIC energy range (0, {MAX_ENERGY_EV / 1000:g} keV]")]
#: A duration, >= 0 s.
Time = Annotated[Quantity, Physical("s", minimum=0)]

#: The rule of a SAS call's time limit, wherever one is given (the run's ``timeout``, DAXA's
#: ``timeout=``): at least a second, since a shorter one ends any task before it starts work.
TIMEOUT = Physical("s", minimum=1)
Timeout = Annotated[Quantity, TIMEOUT]
