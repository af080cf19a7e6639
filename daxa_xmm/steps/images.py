"""generate_images_expmaps: a count image and an exposure map per instrument and band.

The evselect image call mirrors the one recorded in a real SAS image header (XPROC0 of
``xmm-samples/images/0201903501_mos1_exp1-0.50-2.00keVimg.fits``): sky X/Y, 87-unit
(4.35 arcsec) square bins, 512x512 over 3649..48106, Real64. The exposure map is then
made by ``eexpmap imageset= attitudeset= eventset= expimageset= pimin= pimax=`` (names from
the real SAS 22.1 ``Executing`` line), reading the image just made.
"""

from __future__ import annotations

__all__ = ["STAGE", "ImageConfig", "image_expmap_calls"]

from collections.abc import Sequence
from typing import Annotated

from astropy.units import Quantity
from pydantic import AfterValidator, Field, field_validator

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout, band_label
from daxa_xmm.odf.models import EPIC
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.sas.filters import compose_expression
from daxa_xmm.steps._common import FrozenConfig, work_dir
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.quality import QualityConfig
from daxa_xmm.steps.spec import DaxaFunction, Section, Stage, StageInput, on_instruments
from daxa_xmm.units import Energy, show


def _ordered(band: tuple[Quantity, Quantity]) -> tuple[Quantity, Quantity]:
    lo, hi = band
    if hi.to_value("eV") <= lo.to_value("eV"):
        raise ValueError(f"upper energy {show(hi)} must be above lower {show(lo)}")
    return band


#: An energy band (lower, upper), lower below upper.
Band = Annotated[tuple[Energy, Energy], AfterValidator(_ordered)]


class ImageConfig(FrozenConfig):
    """generate_images_expmaps: count images and exposure maps per energy band (image geometry
    as in the real sample image)."""

    bands: tuple[Band, ...] = Field(
        (("0.5 keV", "2.0 keV"), ("2.0 keV", "10.0 keV")), validate_default=True,
        description="energy bands (lower, upper)")
    bin_size: int = Field(87, ge=1, description="image pixel in sky pixels of 0.05 arcsec (87 = 4.35 arcsec) [ximagebinsize]")
    image_size: int = Field(512, ge=1, description="pixels per side [ximagesize]")
    sky_min: int = Field(3649, description="lower sky X/Y edge [ximagemin]")
    sky_max: int = Field(48106, description="upper sky X/Y edge [ximagemax]")

    @field_validator("bands")
    @classmethod
    def _distinct(cls, v: tuple[tuple[Quantity, Quantity], ...]) -> tuple[tuple[Quantity, Quantity], ...]:
        # two bands with one label would share a working folder and one product name
        if not v:
            raise ValueError("give at least one band")
        seen: dict[str, int] = {}
        for i, (lo, hi) in enumerate(v):
            label = band_label(float(lo.to_value("eV")), float(hi.to_value("eV")))
            if label in seen:
                raise ValueError(f"band [{i}] {show(lo)}-{show(hi)} repeats band [{seen[label]}] ({label})")
            seen[label] = i
        return v

    def bands_ev(self) -> list[tuple[float, float]]:
        """The bands in eV, in order."""
        return [(float(lo.to_value("eV")), float(hi.to_value("eV"))) for lo, hi in self.bands]


_DEFAULT = ImageConfig()


def image_expmap_calls(
    layout: ArchiveLayout,
    obsid: str,
    inst: str,
    lo_ev: float,
    hi_ev: float,
    cfg: ImageConfig = _DEFAULT,
    timeout_s: float | None = None,
    user_expr: str | Sequence[str] | None = None,
    *,
    quality: QualityConfig | None = None,
) -> list[SasCall]:
    """``[evselect image, eexpmap]`` for one instrument's merged list in one band.

    ``user_expr`` is the selection the event lists were cleaned with (the run's
    ``pn_filt_expr``/``mos_filt_expr``); None for the instrument's default. The image must
    have a celestial WCS, the exposure map too and exposure in the field of view
    (``quality``); one that has not is a data-quality outcome.

    Raises:
        ConfigError: for a non-EPIC instrument or a bad band.
    """
    if inst not in EPIC:
        raise ConfigError(f"images are made for PN, M1 or M2, not {inst}")
    if not (0 <= lo_ev < hi_ev):
        raise ConfigError(f"band {lo_ev:g}-{hi_ev:g} eV: hi_en must be larger than lo_en")
    expr = compose_expression(inst, lo_ev=lo_ev, hi_ev=hi_ev, user_expr=user_expr)
    events = layout.merged_events(obsid, inst, "clean")
    image = layout.image(obsid, inst, lo_ev, hi_ev)
    expmap = layout.expmap(obsid, inst, lo_ev, hi_ev)
    label = f"{obsid}{inst}-{band_label(lo_ev, hi_ev)}"
    cwd = work_dir(layout, obsid, label, "images")
    env = {"SAS_CCF": str(layout.ccf(obsid))}
    extra = {"band_ev": [lo_ev, hi_ev], "expression": expr}
    judge = quality or QualityConfig()
    img = SasCall(
        step="image",
        obsid=obsid,
        unit=label,
        argv=(
            "evselect",
            param("table", events),
            param("imageset", image.name),
            param("xcolumn", "X"),
            param("ycolumn", "Y"),
            param("imagebinning", "binSize"),
            param("ximagebinsize", cfg.bin_size),
            param("yimagebinsize", cfg.bin_size),
            param("squarepixels", True),
            param("ximagesize", cfg.image_size),
            param("yimagesize", cfg.image_size),
            param("ximagemin", cfg.sky_min),
            param("ximagemax", cfg.sky_max),
            param("withxranges", True),
            param("yimagemin", cfg.sky_min),
            param("yimagemax", cfg.sky_max),
            param("withyranges", True),
            param("imagedatatype", "Real64"),
            param("withimagedatatype", True),
            param("expression", expr),
            param("withimageset", True),
        ),
        cwd=cwd,
        env=env,
        outputs=(OutputSpec(image.name, image, check="image", quality=judge.image()),),
        timeout_s=timeout_s,
        extra=extra,
    )
    exp = SasCall(
        step="expmap",
        obsid=obsid,
        unit=label,
        argv=(
            "eexpmap",
            param("imageset", image),
            param("attitudeset", layout.attitude(obsid)),
            param("eventset", events),
            param("expimageset", expmap.name),
            param("pimin", int(round(lo_ev))),
            param("pimax", int(round(hi_ev))),
        ),
        cwd=cwd,
        env=env,
        outputs=(OutputSpec(expmap.name, expmap, check="image", quality=judge.exposure_map()),),
        timeout_s=timeout_s,
        clean_cwd=False,
        extra=extra,
    )
    return [img, exp]


def _build(si: StageInput) -> list[SasCall]:
    """One band's count image and exposure map, with the run's own selection expression."""
    if si.band is None:
        raise ValueError("a band stage was built without its band")
    clean = si.config.section(CleanEventsConfig)
    expr = clean.pn_filt_expr if si.the_inst == "PN" else clean.mos_filt_expr
    lo, hi = si.band
    return image_expmap_calls(si.layout, si.obsid, si.the_inst, lo, hi, si.config.section(ImageConfig), si.timeout_s,
                              user_expr=expr, quality=si.config.section(QualityConfig))


STAGE = Stage("generate_images_expmaps", "band", _build, on_instruments(*EPIC), typical_s=0.8,
              calls=("image", "expmap"), sas_tasks=("evselect", "eexpmap"),
              section=Section("images", ImageConfig, "images and exposure maps per band"),
              daxa=(DaxaFunction("generate_images_expmaps", needs=("merge_subexposures",)),))
