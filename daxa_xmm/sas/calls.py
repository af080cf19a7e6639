"""Typed plans and results of SAS calls: what the builders return and the runner consumes.

Building a call is kept apart from running it (as flint does) so that every call can be
shown, logged, hashed and tested before anything runs. Builders touch no disk and read no
environment; they return :class:`SasCall` objects. The runner turns one into a
:class:`SasResult`. The seed API (``epchain(archive, ...)`` and friends) returns a
:class:`StepPlan`, which unpacks like DAXA's 7-tuple.
"""

from __future__ import annotations

__all__ = ["FailureKind", "OutputKind", "OutputSpec", "SasCall", "SasResult", "StepPlan", "render_bool", "param"]

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from daxa_xmm.sas.quality import Quality
from daxa_xmm.sas.stderr import SasRecord

BoolStyle = Literal["yes/no", "Y/N", "true/false"]


def render_bool(value: bool, style: BoolStyle = "yes/no") -> str:
    """Render a boolean the way the SAS task expects (tasks differ: yes/no, Y/N, true/false)."""
    yes, no = style.split("/")
    return yes if value else no


def param(name: str, value: object, style: BoolStyle = "yes/no") -> str:
    """One ``name=value`` argv element. Booleans are rendered with ``style``.

    No quoting is added: argv elements reach SAS unchanged, without a shell, so a value
    with spaces (``limits=0.1 6.5``) is one element, exactly as SAS receives it from a
    shell that quoted it.
    """
    if isinstance(value, bool):
        text = render_bool(value, style)
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return f"{name}={text}"


#: Why a call failed. ``start``: the executable could not be started; ``exit``: non-zero
#: exit status or a signal; ``error_record``: SAS printed ``** task: error``; ``missing_input``:
#: a file the call modifies was absent before it ran; ``missing_output``: exit 0 but an
#: expected file is absent; ``corrupt_output``: an output is not what the next step reads
#: (daxa_xmm.sas.product_checks); ``move``: the product could not be moved into place;
#: ``timeout``: killed at its limit; ``interrupted``: the run was asked to stop (Ctrl-C,
#: SIGTERM), so the call was not started or was ended.
FailureKind = Literal[
    "start", "exit", "error_record", "missing_input", "missing_output", "corrupt_output", "move", "timeout",
    "interrupted",
]

#: ``create``: the call writes the file anew (any earlier copy is removed before it runs, so
#: a file present afterwards is this run's; merge, for one, refuses an existing outset).
#: ``modify``: the call updates a file that must already exist (rgsproc's angles stage
#: rewrites the merged list stage 1 wrote; emanom writes keywords into its input).
OutputKind = Literal["create", "modify"]


@dataclass(frozen=True)
class OutputSpec:
    """One file a SAS call must leave behind, and where it goes.

    Attributes:
        name: the file name SAS writes, relative to the call's cwd (or an absolute path,
            for a file modified where it lies).
        dest: where the runner moves it (atomically) once the call succeeded; None for a
            file that stays where it is (an intermediate a later call in the same cwd
            reads, or a file modified in place).
        copy: copy to ``dest`` instead of moving, when the file must also stay in the cwd
            (a later call of the chain reads it there).
        kind: ``create`` or ``modify`` (see :data:`OutputKind`).
        alt_names: other names under which releases of SAS are known to write this file,
            where the sources disagree; the first of ``name, *alt_names`` present is taken.
        check: what the next step needs of the file (a name of
            :data:`daxa_xmm.sas.product_checks.CHECKS`: ``events``, ``gti``, ``image``...), checked
            before the call is recorded ok; None for no check.
        quality: what the product must hold for science downstream (events, good time, a
            WCS, exposure: :class:`daxa_xmm.sas.quality.Quality`), checked after ``check``
            passed; a product that fails it makes the call a data-quality outcome, not a
            failure. None for no such check.
    """

    name: str
    dest: Path | None = None
    copy: bool = False
    kind: OutputKind = "create"
    alt_names: tuple[str, ...] = ()
    check: str | None = None
    quality: Quality | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the file may carry, preferred first."""
        return (self.name, *self.alt_names)


@dataclass(frozen=True)
class SasCall:
    """Everything needed to run, record and skip one SAS invocation.

    Attributes:
        step: pipeline step name (``cif_build``, ``epchain_oot``, ``espfilt``...), the key
            used in manifests.
        obsid: 10-digit ObsID.
        unit: unit label, e.g. ``0201903501PNS003`` (a sub-exposure), ``0201903501`` (the
            observation) or ``0201903501PN-500-2000`` (an instrument and band).
        argv: the exact argv; ``argv[0]`` is the SAS task name. Empty for a placement
            (``placed_from``).
        cwd: working directory; SAS writes its outputs here.
        env: variables added to the inherited environment (SAS_CCF, SAS_ODF...).
        outputs: files that must exist after the call, and where they go.
        timeout_s: wall-clock limit of this call, None for no limit.
        clean_cwd: empty ``cwd`` first; False when this call reuses files an earlier call
            left there (epchain after its out-of-time run, rgsproc's later stages).
        reads_cwd_of: the step of the earlier call (same unit, same cwd) whose leftover
            files this call reads, e.g. ``epchain_oot`` for the normal epchain run. When
            those files are gone (scratch cleaned, a crash), the earlier call is redone
            first instead of this one failing.
        extra: JSON-ready facts for the plan and manifest (exposure, CCDs, band...).
        placed_from: set for a product the pipeline places itself instead of a SAS task
            making it: an instrument's only sub-exposure list is its merged list. No process
            runs: the file is checked and copied to the one output's ``dest``, atomically
            (:func:`daxa_xmm.sas.placement.place`), and recorded, skipped and reported as
            any call is.
    """

    step: str
    obsid: str
    unit: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()
    timeout_s: float | None = None
    clean_cwd: bool = True
    reads_cwd_of: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    placed_from: Path | None = None

    @property
    def task(self) -> str:
        """The SAS task name (``copy`` for a placement, which runs none)."""
        return self.argv[0] if self.argv else "copy"

    @property
    def products(self) -> tuple[Path, ...]:
        """Final destinations of the outputs that are moved into place."""
        return tuple(o.dest for o in self.outputs if o.dest is not None)

    def fingerprint(self, sas_version: str = "") -> str:
        """A hash of what determines this call's result: argv, env, outputs, SAS version, inputs.

        The manifest stores it; a re-run with the same fingerprint and products present is
        skipped, and any change in parameters, inputs or SAS version re-runs the call.
        """
        payload: dict[str, Any] = {
            "argv": list(self.argv),
            # fingerprints of the calls whose products this one reads: a changed parameter
            # upstream re-runs everything downstream even though their argv are unchanged
            "upstream": sorted(self.extra.get("upstream", ())),
            "env": dict(sorted(self.env.items())),
            "outputs": [[o.name, str(o.dest) if o.dest else None] for o in self.outputs],
            "sas": sas_version,
        }
        if self.placed_from is not None:  # only then: every other call keeps its fingerprint
            payload["placed_from"] = str(self.placed_from)
        # data-quality thresholds above zero (the defaults) judge this call's products anew;
        # none at the defaults, so the fingerprints of runs made before the checks still hold
        raised = {o.name: r for o in self.outputs if o.quality is not None and (r := o.quality.raised())}
        if raised:
            payload["quality"] = raised
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line a user can read (and paste into a shell with SAS set up)."""
        import shlex

        if self.placed_from is not None:
            return f"copy {shlex.quote(str(self.placed_from))} to {shlex.quote(str(self.products[0]))} (by daxa-xmm, no SAS task)"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        cmd = " ".join(shlex.quote(a) for a in self.argv)
        return f"(cd {shlex.quote(str(self.cwd))} && {env + ' ' if env else ''}{cmd})"


@dataclass(frozen=True)
class SasResult:
    """What one run of a :class:`SasCall` produced.

    Attributes:
        call: the call that ran.
        status: ``ok``, ``failed`` (exit status, error record or missing output),
            ``timeout`` (killed at its limit), ``interrupted`` (the run was asked to stop) or
            ``data_quality`` (SAS did its work, and a product failed its data-quality check:
            :attr:`OutputSpec.quality`; not a failure, and what it feeds is not run).
        exit_code: process exit status; negative for a signal; None if it never started.
        records: every ``** task: error|warning`` record parsed from stderr.
        products: final paths of the outputs moved into place (empty unless ok or
            data_quality: an unusable product is placed too, for the user to look at).
        started, ended: UNIX times.
        stdout_log, stderr_log: where the SAS output was written.
        message: why it failed, for humans; empty when ok.
        failure: what kind of failure it was (None when ok); retry decisions read this,
            never the message.
        modified: files the call changed where they lie (``modify`` outputs).
        leftovers: names of the files left in the cwd after an ok call; a later call
            that reads them (``reads_cwd_of``) checks they are still there.
        os_errno: the errno of the OS error behind a ``start`` or ``move`` failure: whether
            a retry may help, or the disk is full.
        quality: the kinds of the data-quality checks its products failed (``flare_gti``,
            ``cleaned_events``...), when ``data_quality``.
    """

    call: SasCall
    status: Literal["ok", "failed", "timeout", "interrupted", "data_quality"]
    exit_code: int | None
    records: tuple[SasRecord, ...]
    products: tuple[Path, ...]
    started: float
    ended: float
    stdout_log: Path | None
    stderr_log: Path | None
    message: str = ""
    failure: FailureKind | None = None
    modified: tuple[Path, ...] = ()
    leftovers: tuple[str, ...] = ()
    os_errno: int | None = None
    quality: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def duration_s(self) -> float:
        return self.ended - self.started

    @property
    def errors(self) -> tuple[SasRecord, ...]:
        return tuple(r for r in self.records if r.level == "error")

    @property
    def warnings(self) -> tuple[SasRecord, ...]:
        return tuple(r for r in self.records if r.level == "warning")


class StepPlan(NamedTuple):
    """The seed API's 7-tuple, typed: a DAXA user unpacks it as before.

    ``commands[obsid][unit]`` is the list of calls for one unit, in order;
    ``final_paths[obsid][unit]`` the products it makes; ``extra_info[obsid][unit]`` the
    facts the next step needs (and, under the key ``"error"``, why an observation has no
    calls). The timeout is per SAS call, not per step.
    """

    commands: dict[str, dict[str, list[SasCall]]]
    final_paths: dict[str, dict[str, list[Path]]]
    extra_info: dict[str, dict[str, dict[str, Any]]]
    process_message: str
    num_cores: int
    disable_progress: bool
    timeout: Any  # astropy Quantity or None; Any keeps this module free of astropy

    def calls(self) -> list[SasCall]:
        """Every call of the plan, observation by observation, unit by unit, in order."""
        return [c for units in self.commands.values() for calls in units.values() for c in calls]
