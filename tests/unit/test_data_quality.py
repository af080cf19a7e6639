"""Data-quality checks of products (issue 33.3): each check on synthetic FITS, failing and
passing, and on the real SAS samples, which must pass; their thresholds as settings; the
runner's data-quality outcome; and fingerprints unchanged at the default thresholds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.fitsread import read_hdus
from daxa_xmm.odf.models import Unit
from daxa_xmm.sas.calls import OutputSpec
from daxa_xmm.sas.quality import Limit, Quality, good_time_s, largest_value, quality_problem, wcs_problem
from daxa_xmm.sas.runner import raise_for_result, run_sas
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps.clean_events import CleanEventsConfig, clean_events_calls
from daxa_xmm.steps.espfilt import EspfiltConfig, espfilt_calls
from daxa_xmm.steps.images import image_expmap_calls
from daxa_xmm.steps.quality import QualityConfig
from tests.fake_sas import fake_task, sas_call

DEFAULT = QualityConfig()
#: The image keywords of the real sample image (xmm-samples/images), as evselect wrote them.
SAMPLE_WCS = {"CTYPE1": "RA---TAN", "CRPIX1": 256.505747126437, "CRVAL1": 149.59475, "CUNIT1": "deg",
              "CDELT1": -1.20833333333333e-03, "CTYPE2": "DEC--TAN", "CRPIX2": 256.505747126437,
              "CRVAL2": -11.0876388888889, "CUNIT2": "deg", "CDELT2": 1.20833333333333e-03}


def _gti(intervals: list[tuple[float, float]], name: str = "STDGTI", ccd: int | None = None) -> fits.BinTableHDU:
    arr = np.asarray(intervals, dtype=float).reshape(-1, 2)
    hdu = fits.BinTableHDU.from_columns([fits.Column("START", "D", array=arr[:, 0]), fits.Column("STOP", "D", array=arr[:, 1])],
                                        name=name)
    hdu.header["HDUCLAS1"] = "GTI"
    if ccd is not None:
        hdu.header["CCDID"] = ccd
    return hdu


def _events(n: int) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=np.arange(n, dtype=float)),
                                          fits.Column("PI", "J", array=np.full(n, 1000))], name="EVENTS")


def _write(path: Path, *tables: fits.BinTableHDU, image: np.ndarray | None = None, **cards: object) -> Path:
    primary = fits.PrimaryHDU(image)
    for key, value in cards.items():
        primary.header[key] = value
    fits.HDUList([primary, *tables]).writeto(path)
    return path


# --------------------------------------------------------------------------- each check, synthetic
@pytest.mark.parametrize(
    ("make", "quality", "problem"),
    [
        # espfilt's GTI: good time above the threshold, or the exposure is fully flared
        (lambda p: _write(p, _gti([(0, 100), (200, 250)])), DEFAULT.flare_gti(), None),
        (lambda p: _write(p, _gti([])), DEFAULT.flare_gti(), "fully flared (0 s of GTI"),
        (lambda p: _write(p, _gti([(5, 5)])), DEFAULT.flare_gti(), "fully flared"),
        (lambda p: _write(p, _events(3)), DEFAULT.flare_gti(), "(no GTI table"),
        (lambda p: _write(p, _gti([(0, 100)])), QualityConfig(min_flare_gti="100 s").flare_gti(),
         "too little good time left after flare filtering (100 s of GTI; needs more than 100 s, quality.min_flare_gti)"),
        # a cleaned list: events, and good time
        (lambda p: _write(p, _events(5), _gti([(0, 10)], "STDGTI01", 1)), DEFAULT.cleaned_events(), None),
        (lambda p: _write(p, _events(0), _gti([(0, 10)], "STDGTI01", 1)), DEFAULT.cleaned_events(),
         "no events left after cleaning (0 in EVENTS; needs more than 0, quality.min_clean_events)"),
        (lambda p: _write(p, _events(5), _gti([], "STDGTI01", 1)), DEFAULT.cleaned_events(), "no good time (0 s of GTI"),
        # the filter's GTI of a CCD bounds its good time, as the chain's STDGTInn does
        (lambda p: _write(p, _events(5), _gti([(0, 10)], "STDGTI01", 1), _gti([], "GTI00006", 1)),
         DEFAULT.cleaned_events(), "no good time"),
        (lambda p: _write(p, _events(5), _gti([], "STDGTI01", 1), _gti([(0, 10)], "STDGTI02", 2)),
         DEFAULT.cleaned_events(), None),  # the list has good time on its best CCD
        (lambda p: _write(p, _events(5), _gti([(0, 10)], "STDGTI01", 1)), QualityConfig(min_clean_events=5).cleaned_events(),
         "too few events left after cleaning (5 in EVENTS; needs more than 5, quality.min_clean_events)"),
        # a count image: its celestial WCS
        (lambda p: _write(p, image=np.ones((4, 4)), **SAMPLE_WCS), DEFAULT.image(), None),
        (lambda p: _write(p, image=np.ones((4, 4))), DEFAULT.image(), "no celestial WCS (CTYPE1/CTYPE2 none/none"),
        (lambda p: _write(p, image=np.ones((4, 4)), **{**SAMPLE_WCS, "CTYPE1": "X", "CTYPE2": "Y"}), DEFAULT.image(),
         "no celestial WCS (CTYPE1/CTYPE2 X/Y"),
        (lambda p: _write(p, image=np.ones((4, 4)), **{**SAMPLE_WCS, "CRVAL2": -91.0}), DEFAULT.image(), "not on the sky"),
        (lambda p: _write(p, image=np.ones((4, 4)), **{**SAMPLE_WCS, "CDELT1": 0.0}), DEFAULT.image(), "without a pixel size"),
        (lambda p: _write(p, image=np.ones((4, 4)), **{**SAMPLE_WCS, "CDELT1": 0.0, "CD1_1": -1e-3, "CD2_2": 1e-3}),
         DEFAULT.image(), None),  # a CD matrix gives the pixel size instead
        # an exposure map: the WCS, and exposure in the field of view
        (lambda p: _write(p, image=np.pad(np.full((2, 2), 9000.0), 1), **SAMPLE_WCS), DEFAULT.exposure_map(), None),
        (lambda p: _write(p, image=np.zeros((4, 4), dtype=np.float32), **SAMPLE_WCS), DEFAULT.exposure_map(),
         "no exposure in the field of view (the map is all zero; needs more than 0 s, quality.min_expmap_exposure)"),
        (lambda p: _write(p, image=np.full((4, 4), np.nan), **SAMPLE_WCS), DEFAULT.exposure_map(), "no finite value"),
        (lambda p: _write(p, image=np.ones((4, 4))), DEFAULT.exposure_map(), "no celestial WCS"),
        (lambda p: _write(p, image=np.full((4, 4), 50.0), **SAMPLE_WCS), QualityConfig(min_expmap_exposure="1 ks").exposure_map(),
         "too little exposure in the field of view (the map is at most 50 s; needs more than 1000 s"),
    ],
)
def test_each_check_on_synthetic_products(tmp_path: Path, make, quality: Quality, problem: str | None) -> None:
    path = make(tmp_path / "product.fits")
    got = quality_problem(path, quality)
    assert (got is None) if problem is None else (got is not None and got.startswith("product.fits: ") and problem in got), got


def test_the_largest_value_applies_bscale_and_bzero(tmp_path: Path) -> None:
    path = tmp_path / "scaled.fits"
    hdu = fits.PrimaryHDU(np.array([[0, 3], [1, 2]], dtype=np.int16))
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
    fits.HDUList([hdu]).writeto(path, output_verify="ignore")
    with open(path, "rb") as fh:  # astropy stores the scaling as given: the raw maximum is 3
        assert b"BSCALE  =                  0.5" in fh.read(2880)
    assert largest_value(path, read_hdus(path)[0]) == 11.5


# --------------------------------------------------------------------------- the real samples pass
def test_the_real_cleaned_lists_pass_and_their_good_time_is_what_sas_wrote(xmm_samples: Path) -> None:
    for path in sorted((xmm_samples / "events").glob("*_clean_evts.fits")):
        hdus = read_hdus(path)
        events = next(h for h in hdus if h.name == "EVENTS")
        # the filter's GTI00n06 tables are smaller than the chain's STDGTInn: SAS's ONTIME is their total
        assert good_time_s(path, hdus) == pytest.approx(events.cards["ONTIME"], abs=1e-6), path.name
        assert quality_problem(path, DEFAULT.cleaned_events()) is None, path.name


def test_the_real_image_passes_and_its_wcs_is_what_the_check_asks_for(xmm_samples: Path) -> None:
    image = xmm_samples / "images" / "0201903501_mos1_exp1-0.50-2.00keVimg.fits"
    cards = read_hdus(image)[0].cards
    words = [k for k, v in SAMPLE_WCS.items() if isinstance(v, str)]  # the synthetic tests' WCS is the sample's
    assert [cards[k] for k in words] == [SAMPLE_WCS[k] for k in words]
    assert [cards[k] for k in SAMPLE_WCS if k not in words] == pytest.approx([v for k, v in SAMPLE_WCS.items() if k not in words])
    assert wcs_problem(cards) is None and quality_problem(image, DEFAULT.image()) is None
    # no real exposure map is in the samples; eexpmap's map is on its input image's grid, with its WCS
    assert quality_problem(image, DEFAULT.exposure_map()) is None


# --------------------------------------------------------------------------- the runner's outcome
def test_a_product_failing_its_check_is_a_data_quality_outcome_placed_not_failed(tmp_path: Path) -> None:
    empty = _write(tmp_path / "flared.fits", _gti([]))
    env = fake_task(tmp_path, "espfilt", f"import shutil\nshutil.copy({str(empty)!r}, 'pnS003-gti.fits')\n")
    dest = tmp_path / "cleaning" / "pnS003-gti.fits"
    call = sas_call(tmp_path, "espfilt", outputs=(OutputSpec("pnS003-gti.fits", dest, check="gti", quality=DEFAULT.flare_gti()),))
    res = run_sas(call, extra_env=env)
    assert (res.status, res.failure, res.exit_code, res.quality) == ("data_quality", None, 0, ("flare_gti",))
    assert res.message.startswith("espfilt [0201903501PNS003]: data quality, not a SAS error: pnS003-gti.fits: ")
    assert "fully flared" in res.message
    assert res.products == (dest,) and dest.exists()  # placed, for the user to look at
    raise_for_result(res)  # not an error: nothing to retry
    # the same product under a check it passes is ok
    _write(tmp_path / "good.fits", _gti([(0, 10)]))
    env = fake_task(tmp_path, "espfilt", f"import shutil\nshutil.copy({str(tmp_path / 'good.fits')!r}, 'pnS003-gti.fits')\n")
    assert run_sas(call, extra_env=env).status == "ok"


# --------------------------------------------------------------------------- settings
def test_the_thresholds_are_settings_of_the_run() -> None:
    from daxa_xmm.config import ProcessingConfig

    cfg = ProcessingConfig(archive=Path("/a"), out=Path("/b"), quality={"min_flare_gti": "2 ks", "min_clean_events": 10})
    quality = cfg.section(QualityConfig)
    assert quality.flare_gti().good_time == Limit(2000.0, "quality.min_flare_gti")
    assert quality.cleaned_events().events == Limit(10.0, "quality.min_clean_events")
    with pytest.raises(ValueError, match="min_flare_gti"):
        QualityConfig(min_flare_gti="-1 s")


# --------------------------------------------------------------------------- the builders and fingerprints
LAY = ArchiveLayout(Path("/archive"), Path("/out"))
MOS = Unit(obsid="0201903501", inst="M1", exp_id="S001", ccds=(1, 2, 3))


def _calls(quality: QualityConfig | None) -> list:
    return [*espfilt_calls(LAY, MOS, EspfiltConfig(), SasVersion(22, 1, 0), quality=quality),
            *clean_events_calls(LAY, MOS, CleanEventsConfig(), quality=quality),
            *image_expmap_calls(LAY, "0201903501", "M1", 500, 2000, quality=quality)]


def _without_quality(call):
    return dataclasses.replace(call, outputs=tuple(dataclasses.replace(o, quality=None) for o in call.outputs))


def test_the_builders_declare_each_check_on_its_product() -> None:
    kinds = {c.step: [o.quality.kind for o in c.outputs if o.quality] for c in _calls(None)}
    assert kinds == {"espfilt": ["flare_gti"], "cleaned_evt_lists": ["cleaned_events"], "image": ["image"],
                     "expmap": ["exposure_map"]}


def test_default_thresholds_leave_fingerprints_as_they_were_and_a_raised_one_changes_its_calls_only() -> None:
    # at the defaults the checks add nothing to a call's fingerprint: archives made before them are not redone
    for call in _calls(QualityConfig()):
        assert call.fingerprint("22.1.0") == _without_quality(call).fingerprint("22.1.0"), call.step
    raised = {c.step: c.fingerprint("22.1.0") for c in _calls(QualityConfig(min_clean_gti="1 ks"))}
    default = {c.step: c.fingerprint("22.1.0") for c in _calls(None)}
    assert {s for s in default if raised[s] != default[s]} == {"cleaned_evt_lists"}
    assert QualityConfig(min_clean_gti="1 ks").cleaned_events().raised() == {"quality.min_clean_gti": 1000.0}
