"""Deployment parameters -> one validated ProcessingConfig, without losing a setting.

Prefect merges a run's parameters into its deployment's parameters one top-level key at a
time: a run that sends ``{"espfilt": {"smooth": 41}}`` replaces the deployment's whole
``espfilt`` section, and every other espfilt setting of the deployment would silently fall
back to the model's default. Two things prevent that:

- the deployment flow takes each top-level field of ProcessingConfig as its own parameter,
  so overriding ``num_cores`` cannot drop ``archive``;
- a section (``espfilt``, ``clean``, ``images``) is merged field by field: pydantic
  remembers which fields a run actually gave (``model_fields_set``), and only those replace
  the deployment's values. The UI sends every field of the form (pre-filled with the
  deployment's values), so its runs are unaffected; a partial override from the API or CLI
  now keeps the rest.
"""

from __future__ import annotations

__all__ = ["explicit", "merge_parameters", "config_from_parameters"]

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from daxa_xmm.config import ProcessingConfig, merge_settings
from daxa_xmm.errors import ConfigError, explain


def explicit(value: Any) -> Any:
    """What a run actually gave: a section model becomes the dict of its explicitly set fields."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    return value


def merge_parameters(deployment: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameters over the deployment's, sections merged field by field.

    Args:
        deployment: the deployment's parameters (JSON, as the API stores them).
        run: the parameters the flow received; a section may be a model (its unset fields
            are ignored) or a dict (taken as given).

    Returns:
        A dict ProcessingConfig can validate; ``None`` top-level values are dropped so the
        model's own defaults (``num_cores`` from this machine's cores) apply.
    """
    merged = merge_settings(deployment, {key: explicit(value) for key, value in run.items()})
    return {k: v for k, v in merged.items() if v is not None}


def config_from_parameters(deployment: Mapping[str, Any], run: Mapping[str, Any]) -> ProcessingConfig:
    """Merge and validate; every problem is reported with the field it is about.

    Raises:
        ConfigError: e.g. ``archive: /x is outside the allowed archive roots (...)`` or
            ``images.bands[0]: upper energy '0.5 keV' must be above lower '2 keV'``.
    """
    data = merge_parameters(deployment, run)
    try:
        return ProcessingConfig(**data)
    except ValidationError as exc:
        raise ConfigError("invalid parameters: " + explain(exc)) from None
    except ConfigError as exc:
        raise ConfigError(f"invalid parameters: {exc}") from None
