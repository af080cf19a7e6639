"""generate_images_expmaps: a count image and an exposure map per instrument and band.

The evselect image call mirrors the one recorded in a real SAS image header (XPROC0 of
``xmm-samples/images/0201903501_mos1_exp1-0.50-2.00keVimg.fits``): sky X/Y, 87-unit
(4.35 arcsec) square bins, 512x512 over 3649..48106, Real64. The exposure map is then
made by ``eexpmap imageset= attitudeset= eventset= expimageset= pimin= pimax=`` (names from
the real SAS 22.1 ``Executing`` line), reading the image just made.
"""

from __future__ import annotations

__all__ = ["ImageConfig", "image_expmap_calls"]

from collections.abc import Sequence

from pydantic import Field

from daxa_xmm.calls import OutputSpec, SasCall, param
from daxa_xmm.errors import ConfigError
from daxa_xmm.filters import compose_expression
from daxa_xmm.layout import ArchiveLayout, band_label
from daxa_xmm.steps._common import FrozenConfig, work_dir


class ImageConfig(FrozenConfig):
    """Image geometry (defaults as in the real sample image)."""

    bin_size: int = Field(87, ge=1, description="image bin in sky pixels (0.05 arcsec each) [ximagebinsize]")
    image_size: int = Field(512, ge=1, description="pixels per side [ximagesize]")
    sky_min: int = Field(3649, description="lower sky X/Y edge [ximagemin]")
    sky_max: int = Field(48106, description="upper sky X/Y edge [ximagemax]")


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
) -> list[SasCall]:
    """``[evselect image, eexpmap]`` for one instrument's merged list in one band.

    ``user_expr`` is the selection the event lists were cleaned with (the run's
    ``pn_filt_expr``/``mos_filt_expr``); None for the instrument's default.

    Raises:
        ConfigError: for a non-EPIC instrument or a bad band.
    """
    if inst not in ("PN", "M1", "M2"):
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
        outputs=(OutputSpec(image.name, image, check="image"),),
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
        outputs=(OutputSpec(expmap.name, expmap, check="image"),),
        timeout_s=timeout_s,
        clean_cwd=False,
        extra=extra,
    )
    return [img, exp]
