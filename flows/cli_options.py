"""The command line's settings, generated from ProcessingConfig: one option per field.

Each field of :class:`daxa_xmm.config.ProcessingConfig` is an option named after it
(``--num-cores``, and a section's fields under the section, ``--espfilt.smooth 41``), with
the field's description as its help: a setting added to a model is on the command line at
once, described once. The values are handed to :func:`daxa_xmm.config.load_config` as
typed, so pydantic checks them exactly as it checks a config file or the Prefect form.
"""

from __future__ import annotations

__all__ = ["SKIP", "add_config_options", "config_overrides", "option_name"]

import argparse
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from daxa_xmm.config import ProcessingConfig
from daxa_xmm.pipeline.stages import STAGE_NAMES

#: Fields the command line takes otherwise: ``archive`` is the positional argument.
SKIP = frozenset({"archive"})


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """``(dotted path, field)`` of every setting, sections' fields under their section."""
    for name, field in model.model_fields.items():
        if not prefix and name in SKIP:
            continue
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from _fields(kind, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def option_name(path: str) -> str:
    """``num_cores`` -> ``--num-cores``; ``espfilt.filter_lo_en`` -> ``--espfilt.filter-lo-en``."""
    return f"--{path.replace('_', '-')}"


def _unwrap(kind: Any) -> Any:
    """``X | None`` -> ``X``; ``Annotated[X, ...]`` -> ``X``."""
    if get_origin(kind) in (Union, types.UnionType):
        args = [a for a in get_args(kind) if a is not type(None)]
        kind = args[0] if len(args) == 1 else kind
    if get_origin(kind) is typing.Annotated:
        kind = get_args(kind)[0]
    return kind


def _shape(kind: Any) -> tuple[Any, int | None]:
    """The element type and how many values it takes: None for one, 0 for one or more,
    n for exactly n (a pair), or -n for one or more groups of n (bands)."""
    kind = _unwrap(kind)
    origin, args = get_origin(kind), get_args(kind)
    if origin in (list, tuple) and args and (origin is list or args[-1] is Ellipsis):
        element = _unwrap(args[0])
        if get_origin(element) is tuple and Ellipsis not in get_args(element):
            return get_args(element)[0], -len(get_args(element))
        return element, 0
    if origin is tuple and args:
        return args[0], len(args)
    return kind, None


def _help(field: FieldInfo) -> str:
    text = " ".join((field.description or "").split())
    default = field.get_default(call_default_factory=False)
    if field.default_factory is None and default is not None and default != [] and not field.is_required():
        shown = default if not isinstance(default, (list, tuple)) else ", ".join(
            " ".join(map(str, d)) if isinstance(d, (list, tuple)) else str(d) for d in default)
        text += f" (default: {shown})"
    return text.replace("%", "%%")


def add_config_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One option per setting of ProcessingConfig (see the module's docstring)."""
    for path, field in _fields(ProcessingConfig):
        element, count = _shape(field.annotation)
        name = path.rsplit(".", 1)[-1].upper()
        kw: dict[str, Any] = {"dest": path, "default": None, "help": _help(field), "metavar": name}
        if element is bool and count is None:
            kw["action"] = argparse.BooleanOptionalAction
            del kw["metavar"]
        else:
            if get_origin(element) is Literal:
                kw["choices"] = get_args(element)
                kw["metavar"] = "STEP" if kw["choices"] == STAGE_NAMES else name.removesuffix("S")
            if count == 0:
                kw["nargs"] = "+"
            elif count is not None and count > 0:
                kw["nargs"] = count
            elif count is not None:
                kw["nargs"] = "+"
                kw["metavar"] = "ENERGY"
                kw["help"] += f"; {-count} values per item"
        parser.add_argument(option_name(path), **kw)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line, nested by section, for ``load_config``.

    Raises:
        argparse.ArgumentTypeError: a grouped option (``--images.bands``) whose values do
            not make whole groups.
    """
    out: dict[str, Any] = {}
    for path, field in _fields(ProcessingConfig):
        value = getattr(args, path, None)
        if value is None:
            continue
        _, count = _shape(field.annotation)
        if count is not None and count < 0:
            n = -count
            if len(value) % n:
                raise argparse.ArgumentTypeError(f"--{path}: give values in groups of {n}, got {len(value)}")
            value = [value[i:i + n] for i in range(0, len(value), n)]
        *sections, name = path.split(".")
        target = out
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return out
