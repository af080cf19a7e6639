"""espfilt: soft-proton flare filtering of a PN or MOS event list (GTI, histogram, clean list).

Three forms, by SAS release (sources for each fact: docs/SAS_FIDELITY.md):

- SAS >= 21: ``espfilt eventfile= withoot= [ootfile=] method= withsmoothing= smooth=
  withbinning= binsize= ratio= elow= ehigh= rangescale= allowsigma= limits='lo hi'
  keepinterfiles=yes`` (DAXA 0.3.7); outputs ``pnS003-gti.fits``, ``-allevc.fits``, for PN
  ``-allevcoot.fits``, and ``-hist.qdp`` with the histogram method only (espfilt's page:
  the QDP plot is made by the histogram method).
- SAS 20: the same plus ``withlongnames=yes`` and ``keepinterfiles=no``, exactly as the
  real SAS 20.0.0 ``Executing`` line in xmm-samples; outputs carry the band,
  ``mos1S001-gti-2500-8500.fits`` (the real SAS 20 log). For PN's OOT list DAXA expects
  ``pnS003-allevcoot.fits`` without the band: either name is taken.
- SAS < 20: DAXA 0.3.7's form, ``eventset= method= withsmoothing= smooth= withbinning=
  binsize= ratio=``. No SAS page of that era gives the parameter table; the SAS 15 and 18
  pages describe both methods, so the user's method is passed as asked (never switched).
  No OOT list and no energy band can be passed: a band other than espfilt's default
  2500-8500 eV is refused.

Where the sources disagree on a name (band suffix or not), the runner takes whichever of
the two espfilt wrote (``OutputSpec.alt_names``).
"""

from __future__ import annotations

__all__ = ["STAGE", "DEFAULT_BAND_EV", "EspfiltConfig", "espfilt_calls", "espfilt_output_names"]

from pathlib import Path
from typing import Annotated, Literal

from astropy.units import Quantity
from pydantic import Field, field_validator, model_validator

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.models import EPIC, Unit
from daxa_xmm.sas.calls import OutputSpec, SasCall, param
from daxa_xmm.sas.version import SasVersion
from daxa_xmm.steps._common import FrozenConfig, work_dir
from daxa_xmm.steps.quality import QualityConfig
from daxa_xmm.steps.spec import DaxaFunction, Section, Stage, StageInput, on_instruments
from daxa_xmm.units import Energy, Physical, show


class EspfiltConfig(FrozenConfig):
    """espfilt: flare filtering of PN and MOS sub-exposures (espfilt's parameter in brackets)."""

    method: Literal["histogram", "ratio"] = Field("histogram", description="flare-finding method [method]")
    with_smoothing: bool = Field(True, description="smooth the light curve [withsmoothing]")
    smooth: int = Field(51, ge=1, le=60, description="smoothing factor, 1-60 as the espfilt docs limit it [smooth]")
    with_binning: bool = Field(True, description="bin the light curve [withbinning]")
    binsize: Annotated[Quantity, Physical("s", minimum=1)] = Field(
        "60 s", validate_default=True, description="light-curve bin size, a time >= 1 s [binsize]")
    ratio: float = Field(1.2, gt=0, description="flaring ratio of annulus counts, ratio method [ratio]")
    filter_lo_en: Energy = Field("2500 eV", validate_default=True, description="lower energy of the light curve [elow]")
    filter_hi_en: Energy = Field("8500 eV", validate_default=True, description="upper energy of the light curve [ehigh]")
    range_scale_pn: float = Field(15.0, gt=0, description="histogram range scale, PN [rangescale]")
    range_scale_mos: float = Field(6.0, gt=0, description="histogram range scale, MOS [rangescale]")
    allowed_sigma: float = Field(3.0, gt=0, description="sigma limit for unflared rates [allowsigma]")
    gauss_fit_lims: tuple[float, float] = Field(
        (0.1, 6.5), description="Gaussian fit limits of the histogram method, 0-10 [limits]"
    )

    @field_validator("gauss_fit_lims")
    @classmethod
    def _limits(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (0 <= lo < hi <= 10):
            raise ValueError(f"needs 0 <= lower < upper <= 10, got {v}")
        return v

    @model_validator(mode="after")
    def _band(self) -> EspfiltConfig:
        if self.hi_ev <= self.lo_ev:
            raise ValueError(f"filter_hi_en ({show(self.filter_hi_en)}) must be above filter_lo_en ({show(self.filter_lo_en)})")
        return self

    @property
    def lo_ev(self) -> int:
        """elow: espfilt takes whole eV."""
        return round(float(self.filter_lo_en.to_value("eV")))

    @property
    def hi_ev(self) -> int:
        return round(float(self.filter_hi_en.to_value("eV")))


#: espfilt's default light-curve band (eV), the only one SAS < 20 can be run with.
DEFAULT_BAND_EV = (2500, 8500)


def espfilt_output_names(unit: Unit, cfg: EspfiltConfig, sas_version: SasVersion) -> dict[str, tuple[str, ...]]:
    """Names espfilt writes in its cwd, preferred first: ``gti``, ``allevc``, [``hist``], [``allevcoot``].

    ``hist`` only with the histogram method; ``allevcoot`` only for PN on SAS >= 20.
    """
    stem = f"{unit.file_inst}{unit.exp_id}"
    band = f"-{cfg.lo_ev}-{cfg.hi_ev}"
    banded = sas_version < (21, 0, 0)

    def names(kind: str, ext: str = "fits") -> tuple[str, ...]:
        plain, long = f"{stem}-{kind}.{ext}", f"{stem}-{kind}{band}.{ext}"
        return (long, plain) if banded else (plain, long)

    out = {"gti": names("gti"), "allevc": names("allevc")}
    if cfg.method == "histogram":
        out["hist"] = names("hist", "qdp")
    if unit.inst == "PN" and sas_version >= (20, 0, 0):
        out["allevcoot"] = names("allevcoot")
    return out


def _argv(unit: Unit, cfg: EspfiltConfig, sas_version: SasVersion, events: Path, oot: Path) -> list[str]:
    """espfilt's argv in the form its SAS release takes (see the module docstring)."""
    is_pn = unit.inst == "PN"
    knobs = [
        param("method", cfg.method),
        param("withsmoothing", cfg.with_smoothing),
        param("smooth", cfg.smooth),
        param("withbinning", cfg.with_binning),
        param("binsize", float(cfg.binsize.to_value("s"))),
        param("ratio", cfg.ratio),
    ]
    if sas_version < (20, 0, 0):
        if (cfg.lo_ev, cfg.hi_ev) != DEFAULT_BAND_EV:
            raise ConfigError(
                f"espfilt of SAS {sas_version} cannot be given an energy band (no documented elow/ehigh): "
                f"filter_lo_en/filter_hi_en must stay {DEFAULT_BAND_EV[0]}-{DEFAULT_BAND_EV[1]} eV, "
                f"got {cfg.lo_ev}-{cfg.hi_ev} eV ({unit.label})"
            )
        return ["espfilt", param("eventset", events), *knobs]
    argv = ["espfilt", param("eventfile", events), param("withoot", is_pn)]
    if is_pn:
        argv.append(param("ootfile", oot))
    argv += knobs
    if sas_version < (21, 0, 0):
        argv.append(param("withlongnames", True))
    lo, hi = cfg.gauss_fit_lims
    return argv + [
        param("elow", cfg.lo_ev),
        param("ehigh", cfg.hi_ev),
        param("rangescale", cfg.range_scale_pn if is_pn else cfg.range_scale_mos),
        param("allowsigma", cfg.allowed_sigma),
        param("limits", f"{lo:g} {hi:g}"),
        param("keepinterfiles", sas_version >= (21, 0, 0)),
    ]


def espfilt_calls(
    layout: ArchiveLayout,
    unit: Unit,
    cfg: EspfiltConfig,
    sas_version: SasVersion,
    timeout_s: float | None = None,
    *,
    quality: QualityConfig | None = None,
) -> list[SasCall]:
    """One espfilt call for a PN or MOS sub-exposure, in the form its SAS release takes.

    Its GTI must hold good time (``quality.min_flare_gti``): one with none is a fully flared
    exposure, recorded as a data-quality outcome, and the sub-exposure is not cleaned.

    Raises:
        ConfigError: for a unit that is not PN, M1 or M2, or an energy band SAS < 20 cannot take.
    """
    if unit.inst not in EPIC:
        raise ConfigError(f"espfilt filters EPIC event lists, not {unit.inst} ({unit.label})")
    obsid, inst, exp = unit.obsid, unit.inst, unit.exp_id
    argv = _argv(unit, cfg, sas_version, layout.chain_events(obsid, inst, exp), layout.pn_events(obsid, exp, oot=True))
    names = espfilt_output_names(unit, cfg, sas_version)
    dests = {
        "gti": layout.espfilt_gti(obsid, inst, exp),
        "allevc": layout.espfilt_allevc(obsid, inst, exp),
        "hist": layout.espfilt_hist(obsid, inst, exp),
        "allevcoot": layout.espfilt_allevc(obsid, inst, exp, oot=True),
    }
    checks = {"gti": "gti", "allevc": "events", "allevcoot": "events", "hist": None}
    judged = {"gti": (quality or QualityConfig()).flare_gti()}
    outputs = tuple(OutputSpec(n[0], dests[k], alt_names=n[1:], check=checks[k], quality=judged.get(k)) for k, n in names.items())
    return [
        SasCall(
            step="espfilt",
            obsid=obsid,
            unit=unit.label,
            argv=tuple(argv),
            cwd=work_dir(layout, obsid, unit.label, "espfilt"),
            env={"SAS_CCF": str(layout.ccf(obsid))},
            outputs=outputs,
            timeout_s=timeout_s,
            extra={"exposure": exp, "method": cfg.method, "gti": str(layout.espfilt_gti(obsid, inst, exp))},
        )
    ]


def _build(si: StageInput) -> list[SasCall]:
    return espfilt_calls(si.layout, si.the_unit, si.config.section(EspfiltConfig), si.sas_version, si.timeout_s,
                         quality=si.config.section(QualityConfig))


STAGE = Stage("espfilt", "unit", _build, on_instruments(*EPIC), typical_s=1.0, sas_tasks=("espfilt",),
              section=Section("espfilt", EspfiltConfig, "flare filtering (espfilt)"),
              daxa=(DaxaFunction("espfilt", needs=("epchain", "emchain")),))
