"""DAXA 0.3.7's signatures, held against ours: a DAXA notebook's calls mean the same here.

The table is DAXA 0.3.7's source (``pip download --no-deps daxa==0.3.7``), file and line of
each ``def``; ``NUM_CORES`` is DAXA's default of 90% of the cores, ours too. Our functions
take DAXA's parameters in DAXA's order with DAXA's defaults; anything of ours comes after,
keyword-only, so a positional call of DAXA's cannot fill it by mistake.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from astropy.units import Quantity

import flows.daxa_steps as ours
from daxa_xmm.daxa.plans import NUM_CORES

_NO = inspect.Parameter.empty
_STEP = (("num_cores", NUM_CORES), ("disable_progress", False), ("timeout", None))
_PN = ("#XMMEA_EP", "(PATTERN <= 4)", "(FLAG .eq. 0)")
_MOS = ("#XMMEA_EM", "(PATTERN <= 12)", "(FLAG .eq. 0)")

#: name -> (where DAXA 0.3.7 defines it, its parameters and defaults in order)
DAXA: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {
    "cif_build": ("daxa/process/xmm/setup.py:23",
                  (("obs_archive", _NO), ("num_cores", NUM_CORES), ("disable_progress", False),
                   ("analysis_date", "now"), ("timeout", None))),
    "odf_ingest": ("daxa/process/xmm/setup.py:138", (("obs_archive", _NO), *_STEP)),
    "parse_odf_sum": ("daxa/process/xmm/setup.py:245", (("sum_path", _NO), ("obs_id", None))),
    "epchain": ("daxa/process/xmm/assemble.py:26", (("obs_archive", _NO), ("process_unscheduled", True), *_STEP)),
    "emchain": ("daxa/process/xmm/assemble.py:180", (("obs_archive", _NO), ("process_unscheduled", True), *_STEP)),
    "rgs_events": ("daxa/process/xmm/assemble.py:337",
                   (("obs_archive", _NO), ("process_unscheduled", True), *_STEP)),
    "rgs_angles": ("daxa/process/xmm/assemble.py:470", (("obs_archive", _NO), *_STEP)),
    "cleaned_rgs_event_lists": ("daxa/process/xmm/assemble.py:571", (("obs_archive", _NO), *_STEP)),
    "emanom": ("daxa/process/xmm/check.py:18", (("obs_archive", _NO), *_STEP)),
    "parse_emanom_out": ("daxa/process/xmm/check.py:141",
                         (("log_file_path", _NO), ("acceptable_states", ("G", "I", "U")))),
    "espfilt": ("daxa/process/xmm/clean.py:20",
                (("obs_archive", _NO), ("method", "histogram"), ("with_smoothing", True), ("with_binning", True),
                 ("ratio", 1.2), ("filter_lo_en", Quantity(2500, "eV")), ("filter_hi_en", Quantity(8500, "eV")),
                 ("range_scale", None), ("allowed_sigma", 3.0), ("gauss_fit_lims", (0.1, 6.5)), *_STEP)),
    "cleaned_evt_lists": ("daxa/process/xmm/assemble.py:701",
                          (("obs_archive", _NO), ("lo_en", None), ("hi_en", None), ("pn_filt_expr", _PN),
                           ("mos_filt_expr", _MOS), ("filt_mos_anom_state", False),
                           ("acc_mos_anom_states", ("G", "I", "U")), *_STEP)),
    "merge_subexposures": ("daxa/process/xmm/assemble.py:969", (("obs_archive", _NO), *_STEP)),
    "generate_images_expmaps": ("daxa/process/xmm/generate.py:67",
                                (("obs_archive", _NO), ("lo_en", Quantity([0.5, 2.0], "keV")),
                                 ("hi_en", Quantity([2.0, 10.0], "keV")), ("num_cores", NUM_CORES))),
    "full_process_xmm": ("daxa/process/simple.py:22",
                         (("obs_archive", _NO), ("lo_en", None), ("hi_en", None), ("process_unscheduled", True),
                          ("find_mos_anom_state", False), ("num_cores", NUM_CORES), ("timeout", None))),
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Quantity) or isinstance(b, Quantity):
        return isinstance(a, Quantity) and isinstance(b, Quantity) and a.shape == b.shape and bool(np.all(a == b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("name", sorted(DAXA))
def test_daxas_parameters_in_daxas_order_with_daxas_defaults_then_ours_keyword_only(name: str) -> None:
    where, theirs = DAXA[name]
    params = list(inspect.signature(getattr(ours, name)).parameters.values())
    assert [p.name for p in params[:len(theirs)]] == [n for n, _ in theirs], where
    for p, (pname, default) in zip(params, theirs, strict=False):
        assert p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD), f"{pname} ({where})"
        assert _same(p.default, default), f"{name}'s {pname}: ours {p.default!r}, DAXA's {default!r} ({where})"
    extra = params[len(theirs):]
    assert all(p.kind is p.KEYWORD_ONLY for p in extra), f"{name}: {[p.name for p in extra]} after DAXA's"


@pytest.mark.parametrize("name", [n for n in DAXA if not n.startswith("parse_")])
def test_help_shows_the_functions_that_run_as_returning_nothing_from_where_they_are(name: str) -> None:
    function = getattr(ours, name)
    assert inspect.signature(function).return_annotation in (None, "None")
    assert function.__module__ == "flows.daxa_steps"


def test_every_daxa_function_of_the_table_has_its_plan_and_its_runner() -> None:
    """The runners are one explicit line each (a notebook and a type checker need real names):
    a DAXA function added to the table without them is caught here."""
    from daxa_xmm.daxa import plans
    from daxa_xmm.pipeline.stages import DAXA_STEPS

    for name in DAXA_STEPS:
        assert getattr(plans, name).__name__ == name and getattr(ours, name).__name__ == name
    assert set(DAXA_STEPS) <= set(ours.__all__)


@pytest.mark.parametrize("name", [n for n in DAXA if not n.startswith("parse_") and n != "full_process_xmm"])
def test_help_shows_the_annotations_as_types_as_daxas_help_does(name: str) -> None:
    # DAXA's tutorial shows help(emchain): "process_unscheduled: bool = True", not "'bool'"
    params = inspect.signature(getattr(ours, name)).parameters.values()
    assert not [p.name for p in params if isinstance(p.annotation, str)]
