"""ProcessingConfig: every knob of a processing run in one typed, validated model.

It is what the command line fills, what a YAML/JSON config file holds, and what the Prefect
UI renders as a form (a deployment's parameter). Physical quantities are written the way an
astronomer would type them (``"0.5 keV"``, ``"2 h"``) and checked by physical type, with an
error that names the field. The per-step configs of ``daxa_xmm.steps`` are derived from it,
so the builders never see strings or Quantities.

Sections are nested models so that a partial override from a deployment cannot silently
drop a sibling setting: every section has complete defaults.
"""

from __future__ import annotations

__all__ = [
    "STEPS",
    "StepName",
    "EspfiltSettings",
    "CleanSettings",
    "ImageSettings",
    "ProcessingConfig",
    "load_config",
    "parse_quantity",
    "default_num_cores",
    "ARCHIVE_ROOTS_ENV",
    "allowed_archive_roots",
    "check_inside_roots",
]

import json
import math
import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from daxa_xmm.errors import ConfigError
from daxa_xmm.filters import MOS_DEFAULT, PN_DEFAULT, gti_files, validate_expression
from daxa_xmm.layout import band_label, check_obsid
from daxa_xmm.steps.cifbuild import CifBuildConfig
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.espfilt import EspfiltConfig
from daxa_xmm.steps.images import ImageConfig

StepName = Literal[
    "cif_build",
    "odf_ingest",
    "epchain",
    "emchain",
    "rgsproc",
    "emanom",
    "espfilt",
    "cleaned_evt_lists",
    "merge_subexposures",
    "generate_images_expmaps",
]
#: Pipeline steps in the order they run, by their seed names.
STEPS: tuple[str, ...] = get_args(StepName)
Instrument = Literal["PN", "M1", "M2", "R1", "R2"]


def default_num_cores() -> int:
    """90% of the machine's cores, at least one (DAXA's default)."""
    return max(1, int(0.9 * (os.cpu_count() or 1)))


#: Folders (separated by ``os.pathsep``) that ``archive`` and ``out`` must lie under. A shared
#: server (a deployment started from the UI) sets it so that a form cannot point the flow at
#: any folder the worker can write; unset, every path is allowed (a user's own command line).
ARCHIVE_ROOTS_ENV = "DAXA_XMM_ARCHIVE_ROOTS"


def allowed_archive_roots() -> list[Path]:
    """The resolved folders of ``DAXA_XMM_ARCHIVE_ROOTS``; empty when it is unset."""
    raw = os.environ.get(ARCHIVE_ROOTS_ENV, "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def check_inside_roots(path: Path, field: str) -> Path:
    """Refuse ``path`` unless it lies under one of the allowed roots (symlinks followed).

    Raises:
        ValueError: naming ``field`` (when given), the path and the roots, when ``path`` is
            outside them.
    """
    roots = allowed_archive_roots()
    if not roots:
        return path
    real = Path(path).expanduser().resolve()
    if any(real == r or r in real.parents for r in roots):
        return path
    listed = ", ".join(str(r) for r in roots)
    where = f"{field}: " if field else ""
    raise ValueError(f"{where}{path} is outside the allowed archive roots ({ARCHIVE_ROOTS_ENV}: {listed})")


def parse_quantity(value: Any, unit: str, field: str) -> float:
    """``"0.5 keV"`` (or a Quantity, or a number meaning ``unit``) -> float in ``unit``.

    Raises:
        ConfigError: naming ``field`` when the value is not a quantity convertible to ``unit``.
    """
    from astropy import units as u

    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        q = u.Quantity(value)
        if q.unit == u.dimensionless_unscaled:
            raise ConfigError(f"{field}: {value!r} has no unit; write it like '2 h' or '0.5 keV'")
        return float(q.to_value(unit))
    except ConfigError:
        raise
    except Exception as exc:  # astropy raises TypeError, ValueError, UnitConversionError
        raise ConfigError(f"{field}: {value!r} is not a quantity convertible to {unit} ({exc})") from None


#: EPIC PI is in eV, a 15-bit channel: an energy outside (0, 32767] eV selects nothing.
MAX_ENERGY_EV = 32767.0


def parse_energy(value: Any, field: str) -> float:
    """An energy in eV, > 0 and within EPIC's PI range; refuses '1e9 keV' and '-1 keV'.

    Raises:
        ConfigError: naming ``field``.
    """
    ev = parse_quantity(value, "eV", field)
    if not (math.isfinite(ev) and 0 < ev <= MAX_ENERGY_EV):
        raise ConfigError(f"{field}: {value!r} is outside the EPIC energy range (0, {MAX_ENERGY_EV / 1000:g} keV]")
    return ev


class _Section(BaseModel):
    # field titles as the field names, like the form's top-level parameters (Prefect titles
    # those by name): not pydantic's "Filter Lo En"
    model_config = ConfigDict(extra="forbid", frozen=True, field_title_generator=lambda name, _info: name)


class EspfiltSettings(_Section):
    """espfilt: flare filtering of PN and MOS sub-exposures."""

    method: Literal["histogram", "ratio"] = Field("histogram", description="flare-finding method")
    with_smoothing: bool = Field(True, description="smooth the light curve")
    smooth: int = Field(51, ge=1, le=60, description="smoothing factor (1-60)")
    with_binning: bool = Field(True, description="bin the light curve")
    binsize: str = Field("60 s", description="light-curve bin size, a time (>= 1 s)")
    ratio: float = Field(1.2, gt=0, description="flaring ratio (ratio method)")
    filter_lo_en: str = Field("2500 eV", description="lower energy of the light curve")
    filter_hi_en: str = Field("8500 eV", description="upper energy of the light curve")
    range_scale_pn: float = Field(15.0, gt=0, description="histogram range scale, PN")
    range_scale_mos: float = Field(6.0, gt=0, description="histogram range scale, MOS")
    allowed_sigma: float = Field(3.0, gt=0, description="sigma limit for unflared rates")
    gauss_fit_lims: tuple[float, float] = Field((0.1, 6.5), description="Gaussian fit limits (0-10)")

    def to_step(self) -> EspfiltConfig:
        try:
            return EspfiltConfig(
                method=self.method,
                with_smoothing=self.with_smoothing,
                smooth=self.smooth,
                with_binning=self.with_binning,
                binsize_s=parse_quantity(self.binsize, "s", "espfilt.binsize"),
                ratio=self.ratio,
                filter_lo_ev=round(parse_energy(self.filter_lo_en, "espfilt.filter_lo_en")),
                filter_hi_ev=round(parse_energy(self.filter_hi_en, "espfilt.filter_hi_en")),
                range_scale={"pn": self.range_scale_pn, "mos": self.range_scale_mos},
                allowed_sigma=self.allowed_sigma,
                gauss_fit_lims=self.gauss_fit_lims,
            )
        except ValidationError as exc:
            raise ConfigError(_explain("espfilt", exc)) from None


class CleanSettings(_Section):
    """cleaned_evt_lists: evselect of the chain event lists."""

    lo_en: str | None = Field(None, description="lower energy of the cleaned lists (e.g. '0.2 keV'); with hi_en")
    hi_en: str | None = Field(None, description="upper energy of the cleaned lists (e.g. '12 keV'); with lo_en")
    pn_filt_expr: list[str] = Field([PN_DEFAULT], description="PN selection expressions, joined with &&")
    mos_filt_expr: list[str] = Field([MOS_DEFAULT], description="MOS selection expressions, joined with &&")
    filt_mos_anom_state: bool = Field(False, description="drop MOS CCDs in an anomalous state (emanom)")
    acc_mos_anom_states: list[Literal["G", "I", "U", "B", "O"]] = Field(
        ["G", "I", "U"], description="emanom states accepted when filtering MOS CCDs"
    )

    @field_validator("pn_filt_expr", "mos_filt_expr", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("pn_filt_expr", "mos_filt_expr")
    @classmethod
    def _valid(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("give at least one expression")
        for expr in v:
            validate_expression(expr)
        return v

    def to_step(self) -> CleanEventsConfig:
        lo = None if self.lo_en is None else parse_energy(self.lo_en, "clean.lo_en")
        hi = None if self.hi_en is None else parse_energy(self.hi_en, "clean.hi_en")
        try:
            return CleanEventsConfig(
                lo_ev=lo,
                hi_ev=hi,
                pn_filt_expr=tuple(self.pn_filt_expr),
                mos_filt_expr=tuple(self.mos_filt_expr),
                filt_mos_anom_state=self.filt_mos_anom_state,
                acc_mos_anom_states=tuple(self.acc_mos_anom_states),
            )
        except ValidationError as exc:
            raise ConfigError(_explain("clean", exc)) from None


class ImageSettings(_Section):
    """generate_images_expmaps: count images and exposure maps per energy band."""

    bands: list[tuple[str, str]] = Field(
        [("0.5 keV", "2.0 keV"), ("2.0 keV", "10.0 keV")], description="energy bands (lower, upper)"
    )
    bin_size: int = Field(87, ge=1, description="image pixel in sky pixels (87 = 4.35 arcsec)")

    def bands_ev(self) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        seen: dict[str, int] = {}
        for i, (lo, hi) in enumerate(self.bands):
            lo_ev = parse_energy(lo, f"images.bands[{i}][0]")
            hi_ev = parse_energy(hi, f"images.bands[{i}][1]")
            if hi_ev <= lo_ev:
                raise ConfigError(f"images.bands[{i}]: upper energy {hi!r} must be above lower {lo!r}")
            # two bands with one label would share a working folder and one product name
            label = band_label(lo_ev, hi_ev)
            if label in seen:
                raise ConfigError(f"images.bands[{i}]: {lo}-{hi} repeats images.bands[{seen[label]}] ({label})")
            seen[label] = i
            out.append((lo_ev, hi_ev))
        return out

    def to_step(self) -> ImageConfig:
        return ImageConfig(bin_size=self.bin_size)


class ProcessingConfig(BaseModel):
    """Everything a processing run needs. Defaults reproduce DAXA's.

    Args:
        archive: folder of raw ODFs, one sub-folder per 10-digit ObsID.
        out: where products go (one folder per ObsID); default ``<archive>/../processed``.
        obsids: process only these ObsIDs (default: every ObsID folder in the archive).
        instruments: instruments to process.
        steps: run only these steps; the others reuse products of an earlier run.
        force: re-run these steps (and what depends on them) even if up to date.
        num_cores: at most this many SAS processes at once on this machine.
        obs_concurrency: observations processed at once (default: twice num_cores, so that
            the SAS slots stay busy while an observation is between two SAS calls).
        timeout: wall-clock limit of one SAS call for one unit, e.g. '2 h'.
        retries: retries of a transiently failed SAS call (timeout, signal, OS error).
        retry_delay: first retry delay; doubles each retry.
        process_unscheduled: also process unscheduled (U) exposures.
        analysis_date: cifbuild analysis date, 'now' or YYYY-MM-DD.
        espfilt: flare filtering settings.
        clean: event cleaning settings.
        images: image and exposure map settings.
        disable_progress: no progress bars.
        task_runner: 'threads' on this machine, or 'dask'.
        dask_address: scheduler of an existing Dask cluster (tcp://host:8786); none starts a LocalCluster.
    """

    model_config = ConfigDict(extra="forbid")

    archive: Path = Field(description="folder of raw ODFs, one sub-folder per ObsID")
    out: Path | None = Field(None, description="products folder (default: <archive>/../processed)")
    obsids: list[str] | None = Field(None, description="only these ObsIDs (default: all)")
    instruments: list[Instrument] = Field(["PN", "M1", "M2", "R1", "R2"], description="instruments to process")
    steps: list[StepName] | None = Field(None, description="run only these steps (default: all)")
    force: list[StepName] = Field([], description="re-run these steps even if up to date")
    num_cores: int = Field(default_factory=default_num_cores, ge=1, description="max SAS processes at once")
    obs_concurrency: int | None = Field(None, ge=1, description="observations at once (default: 2 x num_cores)")
    timeout: str = Field("2 h", description="time limit of one SAS call, per unit")
    retries: int = Field(2, ge=0, le=10, description="retries of transient failures")
    retry_delay: str = Field("10 s", description="first retry delay (doubles each retry)")
    process_unscheduled: bool = Field(True, description="also process unscheduled exposures")
    analysis_date: str = Field("now", description="cifbuild analysis date: 'now' or YYYY-MM-DD")
    espfilt: EspfiltSettings = Field(default_factory=EspfiltSettings)
    clean: CleanSettings = Field(default_factory=CleanSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    disable_progress: bool = Field(False, description="no progress bars")
    task_runner: Literal["threads", "dask"] = Field("threads", description="where observations run")
    dask_address: str | None = Field(None, description="existing Dask scheduler address")

    @field_validator("archive", "out")
    @classmethod
    def _inside_roots(cls, v: Path | None, info: Any) -> Path | None:
        # pydantic names the field itself (loc); the message need not repeat it
        return v if v is None else check_inside_roots(v, "")

    @model_validator(mode="after")
    def _default_out_inside_roots(self) -> ProcessingConfig:
        if self.out is None:
            check_inside_roots(self.out_root, "out (default <archive>/../processed)")
        return self

    @field_validator("obsids")
    @classmethod
    def _obsids(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty list selects nothing; leave obsids out to process every ObsID")
            for obsid in v:
                check_obsid(obsid)
            v = list(dict.fromkeys(v))  # `--obsids X X` must not lock the run against itself
        return v

    @field_validator("analysis_date")
    @classmethod
    def _date(cls, v: str) -> str:
        CifBuildConfig(analysis_date=v)
        return v

    @model_validator(mode="after")
    def _paths(self) -> ProcessingConfig:
        out = self.out_root.expanduser().absolute()
        if out.exists() and not out.is_dir():
            raise ValueError(f"out: {out} is a file, not a folder")
        archive = self.archive.expanduser().resolve()
        real_out = out.resolve()
        if real_out == archive or archive in real_out.parents:
            raise ValueError(f"out: {out} is the archive or inside it; products would be written among the ODFs "
                             f"({archive}): choose a folder outside it")
        for field in ("pn_filt_expr", "mos_filt_expr"):
            for expr in getattr(self.clean, field):
                for name in gti_files(expr):
                    gti = Path(name).expanduser()
                    real = (gti if gti.is_absolute() else out / gti).resolve()
                    if not any(real == r or r in real.parents for r in (archive, real_out, *allowed_archive_roots())):
                        raise ValueError(f"clean.{field}: gti({name},TIME) reads a file outside the archive and "
                                         f"the products folder")
        return self

    # Each check below is a field validator, so that pydantic reports every bad field of a
    # form at once (a model validator runs only once all fields passed).
    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        _time_s(v, "timeout", minimum=1.0)
        return v

    @field_validator("retry_delay")
    @classmethod
    def _retry_delay(cls, v: str) -> str:
        _time_s(v, "retry_delay", minimum=0.0)
        return v

    @field_validator("espfilt", "clean")
    @classmethod
    def _section(cls, v: EspfiltSettings | CleanSettings) -> EspfiltSettings | CleanSettings:
        v.to_step()  # energies and expressions parsed now, each error naming its field
        return v

    @field_validator("images")
    @classmethod
    def _bands(cls, v: ImageSettings) -> ImageSettings:
        v.bands_ev()
        return v

    # --- derived values ------------------------------------------------------------------
    @property
    def out_root(self) -> Path:
        return self.out if self.out is not None else self.archive.absolute().parent / "processed"

    def timeout_s(self) -> float:
        return _time_s(self.timeout, "timeout", minimum=1.0)

    def retry_delay_s(self) -> float:
        return _time_s(self.retry_delay, "retry_delay", minimum=0.0)

    def step_selected(self, step: str) -> bool:
        return self.steps is None or step in self.steps

    def cifbuild(self) -> CifBuildConfig:
        return CifBuildConfig(analysis_date=self.analysis_date)


def _time_s(value: Any, field: str, minimum: float) -> float:
    """A duration in seconds, finite and >= ``minimum`` (NaN passes a plain ``<`` test).

    Raises:
        ConfigError: naming ``field``.
    """
    seconds = parse_quantity(value, "s", field)
    if not math.isfinite(seconds) or seconds < minimum:
        least = "at least 1 s (SAS calls take longer)" if minimum == 1.0 else f">= {minimum:g} s"
        raise ConfigError(f"{field}: {value!r} must be a finite time of {least}")
    return seconds


def _explain(section: str, exc: ValidationError) -> str:
    return "; ".join(
        f"{section}.{'.'.join(str(p) for p in err['loc']) or '<section>'}: {err['msg']}" for err in exc.errors()
    )


def _yaml_load(text: str) -> Any:
    """YAML with dates kept as the strings they are written as: ``analysis_date: 2020-01-01``
    works unquoted, and ``2025-13-45`` reaches the field's own check (which names it) instead
    of failing the whole file as "not valid YAML"."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_config(path: str | Path | None = None, **overrides: Any) -> ProcessingConfig:
    """Read a YAML or JSON config file, apply command-line overrides, validate.

    Nested sections in ``overrides`` (``{"espfilt": {"method": "ratio"}}``) are merged into
    the file's section rather than replacing it, so one changed knob keeps the others.

    Raises:
        ConfigError: naming the file and every invalid or unknown field.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"config file {p}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                data = _yaml_load(text) or {}
        except Exception as exc:
            raise ConfigError(f"config file {p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'} ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p}: expected a mapping of settings at the top level")
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return ProcessingConfig(**data)
    except ValidationError as exc:
        where = f"config file {path}: " if path else ""
        raise ConfigError(where + _explain("config", exc).replace("config.", "")) from None
    except ConfigError as exc:
        where = f"config file {path}: " if path else ""
        raise ConfigError(where + str(exc)) from None
