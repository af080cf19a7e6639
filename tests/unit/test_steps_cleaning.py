"""Builders of espfilt and cleaned_evt_lists: exact argv per SAS release, config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from daxa_xmm.errors import ConfigError, FilterExpressionError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.filters import MOS_DEFAULT, PN_DEFAULT
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps._common import make_config
from daxa_xmm.steps.clean_events import CleanEventsConfig, clean_events_calls
from daxa_xmm.steps.espfilt import EspfiltConfig, espfilt_calls

OBS = "0123456789"
LAY = ArchiveLayout(Path("/raw"), Path("/out"))
PN = Unit(obsid=OBS, inst="PN", exp_id="S003", ccds=(1, 2))
M1 = Unit(obsid=OBS, inst="M1", exp_id="S001")
EV = "/out/0123456789/events/"
CL = "/out/0123456789/cleaning/"
#: espfilt's GTI as the cleaning names it, from its working folder (issue 34.4: no products path in the expression)
REL_CL = "../../cleaning/"
BG = "/out/0123456789/background/"
COMMON = ["method=histogram", "withsmoothing=yes", "smooth=51", "withbinning=yes", "binsize=60", "ratio=1.2"]


@pytest.mark.parametrize(
    ("unit", "version", "argv", "names"),
    [
        (
            PN, SasVersion(22, 1, 0),
            ["espfilt", f"eventfile={EV}P0123456789PNS003PIEVLI0000.FIT", "withoot=yes",
             f"ootfile={EV}P0123456789PNS003OOEVLI0000.FIT", *COMMON, "elow=2500", "ehigh=8500", "rangescale=15",
             "allowsigma=3", "limits=0.1 6.5", "keepinterfiles=yes"],
            [("pnS003-gti.fits", "pnS003-gti-2500-8500.fits"), ("pnS003-allevc.fits", "pnS003-allevc-2500-8500.fits"),
             ("pnS003-hist.qdp", "pnS003-hist-2500-8500.qdp"), ("pnS003-allevcoot.fits", "pnS003-allevcoot-2500-8500.fits")],
        ),
        (
            M1, SasVersion(21, 0, 0),
            ["espfilt", f"eventfile={EV}P0123456789M1S001MIEVLI0000.FIT", "withoot=no", *COMMON, "elow=2500",
             "ehigh=8500", "rangescale=6", "allowsigma=3", "limits=0.1 6.5", "keepinterfiles=yes"],
            [("mos1S001-gti.fits", "mos1S001-gti-2500-8500.fits"),
             ("mos1S001-allevc.fits", "mos1S001-allevc-2500-8500.fits"),
             ("mos1S001-hist.qdp", "mos1S001-hist-2500-8500.qdp")],
        ),
        (
            # the real SAS 20.0.0 Executing line (xmm-samples) and its band-suffixed names; for
            # PN's OOT list DAXA expects no suffix: either is taken
            PN, SasVersion(20, 0, 0),
            ["espfilt", f"eventfile={EV}P0123456789PNS003PIEVLI0000.FIT", "withoot=yes",
             f"ootfile={EV}P0123456789PNS003OOEVLI0000.FIT", *COMMON, "withlongnames=yes", "elow=2500", "ehigh=8500",
             "rangescale=15", "allowsigma=3", "limits=0.1 6.5", "keepinterfiles=no"],
            [("pnS003-gti-2500-8500.fits", "pnS003-gti.fits"), ("pnS003-allevc-2500-8500.fits", "pnS003-allevc.fits"),
             ("pnS003-hist-2500-8500.qdp", "pnS003-hist.qdp"),
             ("pnS003-allevcoot-2500-8500.fits", "pnS003-allevcoot.fits")],
        ),
        (
            # DAXA 0.3.7's form before SAS 20: eventset=, the user's method kept (not switched)
            M1, SasVersion(18, 0, 0),
            ["espfilt", f"eventset={EV}P0123456789M1S001MIEVLI0000.FIT", *COMMON],
            [("mos1S001-gti-2500-8500.fits", "mos1S001-gti.fits"),
             ("mos1S001-allevc-2500-8500.fits", "mos1S001-allevc.fits"),
             ("mos1S001-hist-2500-8500.qdp", "mos1S001-hist.qdp")],
        ),
    ],
)
def test_espfilt_forms(unit: Unit, version: SasVersion, argv: list[str], names: list[tuple[str, str]]) -> None:
    (call,) = espfilt_calls(LAY, unit, EspfiltConfig(), version)
    assert list(call.argv) == argv
    assert [o.names for o in call.outputs] == names
    fi = unit.file_inst + unit.exp_id
    dests = [Path(f"{CL}{fi}-gti.fits"), Path(f"{BG}{fi}-allevc.fits"), Path(f"{CL}{fi}-hist.qdp")]
    if unit.inst == "PN":
        dests.append(Path(f"{BG}{fi}-allevcoot.fits"))
    assert [o.dest for o in call.outputs] == dests
    assert call.env == {"SAS_CCF": "/out/0123456789/ccf.cif"}


@pytest.mark.parametrize("version", [SasVersion(22, 1, 0), SasVersion(20, 0, 0), SasVersion(18, 0, 0)])
def test_espfilt_ratio_method_expects_no_histogram(version: SasVersion) -> None:
    # espfilt's page: "A QDP plot of the lightcurves are created if one is using the histogram method"
    (call,) = espfilt_calls(LAY, PN, EspfiltConfig(method="ratio"), version)
    assert "method=ratio" in call.argv
    assert not any(n.endswith(".qdp") for o in call.outputs for n in o.names)


def test_espfilt_before_sas20_refuses_a_band_it_cannot_pass() -> None:
    with pytest.raises(ConfigError, match="SAS 18.0.0.*3000-9000 eV"):
        espfilt_calls(LAY, M1, EspfiltConfig(filter_lo_en="3 keV", filter_hi_en="9000 eV"), SasVersion(18, 0, 0))


def test_espfilt_custom_knobs() -> None:
    cfg = EspfiltConfig(method="ratio", with_smoothing=False, smooth=10, binsize="0.5 min", ratio=2,
                        filter_lo_en="3 keV", filter_hi_en="9000 eV", range_scale_pn=10, range_scale_mos=4,
                        allowed_sigma=2.5, gauss_fit_lims=(0.2, 5))
    (call,) = espfilt_calls(LAY, M1, cfg, SasVersion(22, 1, 0))
    for item in ["method=ratio", "withsmoothing=no", "smooth=10", "binsize=30", "ratio=2", "elow=3000",
                 "ehigh=9000", "rangescale=4", "allowsigma=2.5", "limits=0.2 5"]:
        assert item in call.argv


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (dict(method="median"), "method"),
        (dict(binsize="0.5 s"), "binsize: '0.5 s' must be at least 1 s"),
        (dict(binsize=60), "binsize: 60 has no unit"),
        (dict(smooth=0), "smooth"),
        (dict(smooth=61), "smooth"),
        (dict(filter_lo_en="0 eV"), "filter_lo_en"),
        (dict(filter_hi_en="40 keV"), "filter_hi_en"),
        (dict(filter_hi_en="2 s"), "filter_hi_en: '2 s' is a time"),
        (dict(filter_lo_en="5 keV", filter_hi_en="4 keV"), "filter_hi_en"),
        (dict(range_scale_pn=0), "range_scale_pn"),
        (dict(range_scale_mos=-6), "range_scale_mos"),
        (dict(allowed_sigma=0), "allowed_sigma"),
        (dict(gauss_fit_lims=(6.5, 0.1)), "gauss_fit_lims"),
        (dict(gauss_fit_lims=(0.1, 11)), "gauss_fit_lims"),
        (dict(ratio=-1), "ratio"),
        (dict(bogus=1), "bogus"),
    ],
)
def test_espfilt_config_errors_name_the_field(values: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        make_config(EspfiltConfig, **values)


def test_clean_events_pn_two_calls_one_cwd() -> None:
    calls = clean_events_calls(LAY, PN, CleanEventsConfig(lo_en="500 eV", hi_en="2 keV"))
    expr = PN_DEFAULT + f" && (PI in [500:2000]) && gti({REL_CL}pnS003-gti.fits,TIME)"
    assert [list(c.argv) for c in calls] == [
        ["evselect", f"table={EV}{tbl}", f"filteredset={out}", "withfilteredset=yes", f"expression={expr}",
         "updateexposure=yes", "filterexposure=yes", "keepfilteroutput=yes"]
        for tbl, out in [
            ("P0123456789PNS003PIEVLI0000.FIT", "0123456789_pn_S003_clean_evts.fits"),
            ("P0123456789PNS003OOEVLI0000.FIT", "0123456789_pn_S003_clean_oot_evts.fits"),
        ]
    ]
    assert calls[0].cwd == calls[1].cwd and [c.clean_cwd for c in calls] == [True, False]
    assert calls[1].outputs[0].dest == Path(f"{EV}0123456789_pn_S003_clean_oot_evts.fits")


def test_clean_events_mos_with_ccds_and_user_expression() -> None:
    cfg = CleanEventsConfig(mos_filt_expr=("PATTERN <= 4", "FLAG == 0"))
    (call,) = clean_events_calls(LAY, M1, cfg, accepted_ccds=[1, 2, 4])
    assert f"expression=PATTERN <= 4 && FLAG == 0 && gti({REL_CL}mos1S001-gti.fits,TIME) && (CCDNR in 1,2,4)" in call.argv
    (plain,) = clean_events_calls(LAY, M1, CleanEventsConfig())
    assert f"expression={MOS_DEFAULT} && gti({REL_CL}mos1S001-gti.fits,TIME)" in plain.argv


@pytest.mark.parametrize(
    ("values", "field"),
    [
        (dict(lo_en="500 eV"), "lo_en and hi_en"),
        (dict(lo_en="2 keV", hi_en="500 eV"), "hi_en"),
        (dict(lo_en="2 keV", hi_en=5), "hi_en: 5 has no unit"),
        (dict(acc_mos_anom_states=("G", "X")), "acc_mos_anom_states"),
        (dict(acc_mos_anom_states=()), "acc_mos_anom_states"),
        (dict(pn_filt_expr="(PATTERN <= 4"), "pn_filt_expr"),
    ],
)
def test_clean_config_errors(values: dict, field: str) -> None:
    with pytest.raises((ConfigError, FilterExpressionError), match=field):
        make_config(CleanEventsConfig, **values)
