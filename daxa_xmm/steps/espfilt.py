"""espfilt: soft-proton flare filtering of a PN or MOS event list (GTI, histogram, clean list).

Three forms, by SAS release (the parameter names are those of the real ``Executing`` line
SAS 20.0.0 printed; ``../shared/xmm-samples/sas_logs``):

- SAS >= 21: ``espfilt eventfile= withoot= [ootfile=] method= withsmoothing= smooth=
  withbinning= binsize= ratio= elow= ehigh= rangescale= allowsigma= limits='lo hi'
  keepinterfiles=yes``; outputs ``pnS003-gti.fits``, ``-allevc.fits``, ``-hist.qdp`` and, for
  PN, ``-allevcoot.fits``.
- SAS 20: the same plus ``withlongnames=yes``, and ``keepinterfiles=no`` as DAXA ran it;
  outputs carry the band, ``pnS003-gti-2500-8500.fits`` (seen in the real SAS 20 logs).
- SAS < 20: ``eventset=`` and the ratio method only (a histogram request is switched to
  ratio with a warning, as DAXA did), no OOT list, no energy band.

MOS gets no ``ootfile``: it has no out-of-time list (DAXA passed the placeholder
``dataset``, which is espfilt's default anyway).
"""

from __future__ import annotations

__all__ = ["EspfiltConfig", "espfilt_calls", "espfilt_output_names"]

import logging
from typing import Literal

from pydantic import Field, field_validator, model_validator

from daxa_xmm.calls import OutputSpec, SasCall, param
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.models import Unit
from daxa_xmm.sasversion import SasVersion
from daxa_xmm.steps._common import FrozenConfig, work_dir

logger = logging.getLogger(__name__)


class EspfiltConfig(FrozenConfig):
    """Knobs of espfilt (DAXA's names; espfilt's parameter in brackets)."""

    method: Literal["histogram", "ratio"] = Field("histogram", description="flare-finding method [method]")
    with_smoothing: bool = Field(True, description="smooth the light curve [withsmoothing]")
    smooth: int = Field(51, ge=1, le=60, description="smoothing factor, 1-60 as the espfilt docs limit it [smooth]")
    with_binning: bool = Field(True, description="bin the light curve [withbinning]")
    binsize_s: float = Field(60.0, ge=1.0, description="light-curve bin size in seconds, >= 1 s [binsize]")
    ratio: float = Field(1.2, gt=0, description="flaring ratio of annulus counts, ratio method [ratio]")
    filter_lo_ev: int = Field(2500, ge=1, le=32766, description="lower energy of the light curve, eV [elow]")
    filter_hi_ev: int = Field(8500, ge=2, le=32767, description="upper energy of the light curve, eV [ehigh]")
    range_scale: dict[str, float] = Field(
        default_factory=lambda: {"pn": 15.0, "mos": 6.0},
        description="histogram range scale per camera, keys 'pn' and 'mos' [rangescale]",
    )
    allowed_sigma: float = Field(3.0, gt=0, description="sigma limit for unflared rates [allowsigma]")
    gauss_fit_lims: tuple[float, float] = Field(
        (0.1, 6.5), description="Gaussian fit limits of the histogram method, 0-10 [limits]"
    )

    @field_validator("range_scale")
    @classmethod
    def _range_scale(cls, v: dict[str, float]) -> dict[str, float]:
        if set(v) != {"pn", "mos"}:
            raise ValueError(f"needs exactly the keys 'pn' and 'mos', got {sorted(v)}")
        if any(not x > 0 for x in v.values()):
            raise ValueError("values must be > 0")
        return v

    @field_validator("gauss_fit_lims")
    @classmethod
    def _limits(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0 <= lo < hi <= 10):
            raise ValueError(f"needs 0 <= lower < upper <= 10, got {v}")
        return v

    @model_validator(mode="after")
    def _band(self) -> "EspfiltConfig":
        if self.filter_hi_ev <= self.filter_lo_ev:
            raise ValueError(
                f"filter_hi_ev ({self.filter_hi_ev}) must be larger than filter_lo_ev ({self.filter_lo_ev})"
            )
        return self


def espfilt_output_names(unit: Unit, cfg: EspfiltConfig, sas_version: SasVersion) -> dict[str, str]:
    """The names espfilt writes in its cwd: ``gti``, ``allevc``, ``hist`` and, PN, ``allevcoot``."""
    stem = f"{unit.file_inst}{unit.exp_id}"
    band = f"-{cfg.filter_lo_ev}-{cfg.filter_hi_ev}" if (20, 0, 0) <= sas_version < (21, 0, 0) else ""
    names = {
        "gti": f"{stem}-gti{band}.fits",
        "allevc": f"{stem}-allevc{band}.fits",
        "hist": f"{stem}-hist{band}.qdp",
    }
    if unit.inst == "PN" and sas_version >= (20, 0, 0):
        names["allevcoot"] = f"{stem}-allevcoot{band}.fits"
    return names


def espfilt_calls(
    layout: ArchiveLayout,
    unit: Unit,
    cfg: EspfiltConfig,
    sas_version: SasVersion,
    timeout_s: float | None = None,
) -> list[SasCall]:
    """One espfilt call for a PN or MOS sub-exposure, in the form its SAS release takes.

    Raises:
        ConfigError: for a unit that is not PN, M1 or M2.
    """
    if unit.inst not in ("PN", "M1", "M2"):
        raise ConfigError(f"espfilt filters EPIC event lists, not {unit.inst} ({unit.label})")
    obsid, inst, exp = unit.obsid, unit.inst, unit.exp_id
    events = layout.chain_events(obsid, inst, exp)
    is_pn = inst == "PN"
    method = cfg.method
    if sas_version < (20, 0, 0):
        if method != "ratio":
            logger.warning("SAS %s has no espfilt histogram method (added in 20.0.0): %s uses 'ratio'", sas_version, unit.label)
            method = "ratio"
        argv: list[str] = [
            "espfilt",
            param("eventset", events),
            param("method", method),
            param("withsmoothing", cfg.with_smoothing),
            param("smooth", cfg.smooth),
            param("withbinning", cfg.with_binning),
            param("binsize", cfg.binsize_s),
            param("ratio", cfg.ratio),
        ]
    else:
        argv = ["espfilt", param("eventfile", events), param("withoot", is_pn)]
        if is_pn:
            argv.append(param("ootfile", layout.pn_events(obsid, exp, oot=True)))
        argv += [
            param("method", method),
            param("withsmoothing", cfg.with_smoothing),
            param("smooth", cfg.smooth),
            param("withbinning", cfg.with_binning),
            param("binsize", cfg.binsize_s),
            param("ratio", cfg.ratio),
        ]
        if sas_version < (21, 0, 0):
            argv.append(param("withlongnames", True))
        lo, hi = cfg.gauss_fit_lims
        argv += [
            param("elow", cfg.filter_lo_ev),
            param("ehigh", cfg.filter_hi_ev),
            param("rangescale", cfg.range_scale["pn" if is_pn else "mos"]),
            param("allowsigma", cfg.allowed_sigma),
            param("limits", f"{lo:g} {hi:g}"),
            param("keepinterfiles", sas_version >= (21, 0, 0)),
        ]
    names = espfilt_output_names(unit, cfg, sas_version)
    outputs = [
        OutputSpec(names["gti"], layout.espfilt_gti(obsid, inst, exp)),
        OutputSpec(names["allevc"], layout.espfilt_allevc(obsid, inst, exp)),
        OutputSpec(names["hist"], layout.espfilt_hist(obsid, inst, exp)),
    ]
    if "allevcoot" in names:
        outputs.append(OutputSpec(names["allevcoot"], layout.espfilt_allevc(obsid, inst, exp, oot=True)))
    return [
        SasCall(
            step="espfilt",
            obsid=obsid,
            unit=unit.label,
            argv=tuple(argv),
            cwd=work_dir(layout, obsid, unit.label, "espfilt"),
            env={"SAS_CCF": str(layout.ccf(obsid))},
            outputs=tuple(outputs),
            timeout_s=timeout_s,
            extra={"exposure": exp, "method": method, "gti": str(layout.espfilt_gti(obsid, inst, exp))},
        )
    ]
