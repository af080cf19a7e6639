"""ProcessingConfig: every knob of a processing run in one typed, validated model.

It is what a YAML/JSON config file holds, and the command line's options and the Prefect
form (a deployment's parameters) are generated from it (flows/cli_options.py,
deployments/flow.py): a field and its description are written once, here or in a step's
model. A step's settings are its own model in ``daxa_xmm/steps/<step>.py``, used as a section
here, so the step's builder reads exactly the model the user filled. Energies and times are
astropy Quantities typed as an astronomer writes them (``"0.5 keV"``, ``"2 h"``), checked by
physical type with an error that names the field (:mod:`daxa_xmm.units`).

Sections are nested models so that a partial override from a deployment cannot silently
drop a sibling setting: every section has complete defaults.
"""

from __future__ import annotations

__all__ = [
    "StepName",
    "ClusterName",
    "ProcessingFields",
    "ProcessingConfig",
    "load_config",
    "merge_settings",
    "read_config_file",
    "default_num_cores",
    "ARCHIVE_ROOTS_ENV",
    "allowed_archive_roots",
    "check_inside_roots",
]

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from daxa_xmm.errors import ConfigError, explain
from daxa_xmm.layout import check_obsid, real_path
from daxa_xmm.odf.models import UNIT_INSTRUMENTS, UnitInstrument
from daxa_xmm.pipeline.stages import SECTIONS, STAGE_NAMES
from daxa_xmm.pipeline.storage import StoragePolicy
from daxa_xmm.sas.filters import gti_files
from daxa_xmm.steps.cifbuild import CifBuildConfig
from daxa_xmm.steps.clean_events import CleanEventsConfig
from daxa_xmm.steps.quality import QualityConfig
from daxa_xmm.units import Time, Timeout

M = TypeVar("M", bound=BaseModel)

#: The batch systems of ``cluster``: dask-jobqueue's clusters, by the name of their section of
#: its config (``jobqueue.slurm``...; ``flows/cluster.py`` finds the class of that name).
ClusterName = Literal["slurm", "pbs", "sge", "htcondor", "lsf", "oar", "moab"]

if TYPE_CHECKING:
    StepName = str
else:  # the form's and the CLI's choices follow the table: a step added there is selectable
    StepName = Literal[STAGE_NAMES]


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
    real = real_path(Path(path), field or "path")
    if any(real == r or r in real.parents for r in roots):
        return path
    listed = ", ".join(str(r) for r in roots)
    where = f"{field}: " if field else ""
    raise ValueError(f"{where}{path} is outside the allowed archive roots ({ARCHIVE_ROOTS_ENV}: {listed})")


class ProcessingFields(BaseModel):
    """Everything a processing run needs. Defaults reproduce DAXA's.

    Each field's description (below) is the one the command line's ``--help``, the Prefect
    form and this documentation show. A step's settings are its section, the step's own
    model (``daxa_xmm/steps/<step>.py``), added from the pipeline's table to make
    :data:`ProcessingConfig`: read one with :meth:`section` (``config.section(EspfiltConfig)``).
    """

    model_config = ConfigDict(extra="forbid")

    archive: Path = Field(description="folder of raw ODFs, one sub-folder per ObsID")
    out: Path | None = Field(None, description="products folder (default: <archive>/../processed)")
    obsids: list[str] | None = Field(None, description="only these ObsIDs (default: all)")
    instruments: list[UnitInstrument] = Field(list(UNIT_INSTRUMENTS), description="instruments to process")
    steps: list[StepName] | None = Field(None, description="run only these steps (default: all)")
    force: list[StepName] = Field([], description="re-run these steps even if up to date")
    num_cores: int = Field(default_factory=default_num_cores, ge=1, description="max SAS processes at once")
    obs_concurrency: int | None = Field(None, ge=1, description="observations at once (default: 2 x num_cores)")
    timeout: Timeout = Field(
        "2 h", validate_default=True, description="time limit of each SAS call (at least 1 s)")
    retries: int = Field(2, ge=0, le=10, description="retries of transient failures")
    retry_delay: Time = Field("10 s", validate_default=True, description="first retry delay (doubles each retry)")
    process_unscheduled: bool = Field(True, description="also process unscheduled exposures")
    analysis_date: str = Field("now", description="cifbuild analysis date: 'now' or YYYY-MM-DD")
    disable_progress: bool = Field(False, description="no progress bars")
    storage: StoragePolicy = Field(
        "all", description="what a finished observation keeps: 'all'; 'products' (no working folders or "
        "unpacked ODFs); 'final' (nor the chains' raw event lists)")
    task_runner: Literal["threads", "dask"] = Field("threads", description="where observations run")
    dask_address: str | None = Field(None, description="existing Dask scheduler address")
    cluster: ClusterName | None = Field(None, description=(
        "with task_runner dask: run the observations in jobs of this batch system, started and stopped as they "
        "are needed (dask-jobqueue's cluster of that name)"))
    cluster_config: Path | None = Field(None, description=(
        "a dask config file (YAML) for the cluster: dask-jobqueue's jobqueue.<cluster> settings (cores, memory, "
        "walltime, queue, job-script-prologue...) and distributed.adaptive's minimum and maximum workers (default: "
        "dask's own config, e.g. ~/.config/dask/jobqueue.yaml)"))
    # not a step's section: several steps' products are judged by it (daxa_xmm/steps/quality.py)
    quality: QualityConfig = Field(
        default_factory=QualityConfig,
        description="data-quality thresholds: a product at or below one is recorded as unusable (not a SAS error) "
                    "and what it feeds is not run")

    @field_validator("archive", "out")
    @classmethod
    def _inside_roots(cls, v: Path | None, info: Any) -> Path | None:
        # pydantic names the field itself (loc); the message need not repeat it
        return v if v is None else check_inside_roots(v, "")

    @model_validator(mode="after")
    def _default_out_inside_roots(self) -> ProcessingFields:
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

    @model_validator(mode="after")
    def _cluster(self) -> ProcessingFields:
        if self.cluster is not None and self.task_runner != "dask":
            raise ValueError(f"cluster: {self.cluster} jobs run the observations on Dask: set task_runner to dask too")
        if self.cluster is not None and self.dask_address:
            raise ValueError("cluster: starts its own Dask scheduler; leave dask_address out (or cluster, to use that scheduler)")
        if self.cluster_config is not None:
            if self.cluster is None:
                raise ValueError("cluster_config: configures a cluster: name its batch system (cluster) too")
            read_config_file(self.cluster_config)  # readable YAML now, not when the first job starts
        return self

    @field_validator("analysis_date")
    @classmethod
    def _date(cls, v: str) -> str:
        CifBuildConfig(analysis_date=v)
        return v

    @model_validator(mode="after")
    def _paths(self) -> ProcessingFields:
        out = self.out_root.expanduser().absolute()
        if out.exists() and not out.is_dir():
            raise ValueError(f"out: {out} is a file, not a folder")
        archive = real_path(self.archive, "archive")
        real_out = real_path(out, "out")
        if real_out == archive or archive in real_out.parents:
            raise ValueError(f"out: {out} is the archive or inside it; products would be written among the ODFs "
                             f"({archive}): choose a folder outside it")
        for field in ("pn_filt_expr", "mos_filt_expr"):
            for expr in getattr(self.section(CleanEventsConfig), field):
                for name in gti_files(expr):
                    real = real_path(Path(name), f"clean.{field}")  # absolute (CleanEventsConfig)
                    if not any(real == r or r in real.parents for r in (archive, real_out, *allowed_archive_roots())):
                        raise ValueError(f"clean.{field}: gti({name},TIME) reads a file outside the archive and "
                                         f"the products folder")
        return self

    # --- derived values ------------------------------------------------------------------
    @property
    def out_root(self) -> Path:
        return self.out if self.out is not None else self.archive.absolute().parent / "processed"

    @property
    def needs_heasoft(self) -> bool:
        """Whether the run calls emchain (MOS), which needs HEASoft besides SAS."""
        return any(inst in ("M1", "M2") for inst in self.instruments)

    def timeout_s(self) -> float:
        return float(self.timeout.to_value("s"))

    def retry_delay_s(self) -> float:
        return float(self.retry_delay.to_value("s"))

    def observations_at_once(self) -> int:
        """``obs_concurrency``, or its default."""
        return self.obs_concurrency or 2 * self.num_cores

    def step_selected(self, step: str) -> bool:
        return self.steps is None or step in self.steps

    def section(self, model: type[M]) -> M:
        """The run's settings of a step's model: the section of that model (``espfilt``), or,
        for a step whose settings are top-level fields (cifbuild's ``analysis_date``), the
        model made of the fields of the same names."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, model):
                return value
        return model(**{name: getattr(self, name) for name in model.model_fields})


def _with_sections(base: type[ProcessingFields]) -> type[ProcessingFields]:
    """``base`` with one field per step section of the pipeline's table, after its own."""
    fields: dict[str, Any] = {
        section.name: (section.model, Field(default_factory=section.model, description=section.description))
        for section in SECTIONS
    }
    return create_model("ProcessingConfig", __base__=base, __module__=__name__, __doc__=base.__doc__, **fields)


if TYPE_CHECKING:  # the sections are read through ProcessingFields.section, typed by their model
    ProcessingConfig = ProcessingFields
else:
    ProcessingConfig = _with_sections(ProcessingFields)


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


def read_config_file(p: Path) -> dict[str, Any]:
    """The settings of a YAML or JSON file, as written (not yet validated).

    Raises:
        ConfigError: naming the file, when it cannot be read or is not a mapping.
    """
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {p}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else (_yaml_load(text) or {})
    except Exception as exc:
        raise ConfigError(f"config file {p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping of settings at the top level")
    return data


def merge_settings(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``, sections merged field by field (at any depth): one changed knob of
    a section keeps the section's others. The one merge of a config file with the command
    line and of a deployment's parameters with a run's (:mod:`deployments.params`)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, **overrides: Any) -> ProcessingConfig:
    """Read a YAML or JSON config file, apply command-line overrides, validate.

    Nested sections in ``overrides`` (``{"espfilt": {"method": "ratio"}}``) are merged into
    the file's section rather than replacing it, so one changed knob keeps the others.

    Raises:
        ConfigError: naming the file and every invalid or unknown field.
    """
    data = read_config_file(Path(path)) if path is not None else {}
    data = merge_settings(data, {key: value for key, value in overrides.items() if value is not None})
    try:
        return ProcessingConfig(**data)
    except ValidationError as exc:
        where = f"config file {path}: " if path else ""
        raise ConfigError(where + explain(exc)) from None
    except ConfigError as exc:
        where = f"config file {path}: " if path else ""
        raise ConfigError(where + str(exc)) from None
