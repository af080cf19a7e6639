"""Fault injection, simulated durations and the call log of the SAS stand-in.

The pipeline must survive SAS misbehaving: a task that fails with a SAS error, hangs,
crashes half-way through writing its output, runs out of disk or simply takes long. The
stand-in reads what to do from its environment, so that a test or the demo can break one
chosen unit of a real run without touching the code under test:

- ``DAXA_STANDIN_FAULTS``: a JSON list of rules (inline JSON or the path of a JSON file).
  A rule ``{"task": "epchain", "match": "exposure=003", "action": "fail", "name":
  "ErrName", "message": "...", "seconds": 2.0, "times": 1}`` applies to calls of that task
  whose ``' '.join(argv) + ' ' + cwd`` contains ``match``. ``action`` is ``fail`` (SAS
  error record, exit 1), ``hang`` (sleeps until killed), ``crash`` (writes half of the
  first output, then dies by SIGKILL), ``corrupt`` (runs, cuts its first output to a third
  and exits 0), ``sleep`` (waits ``seconds`` then runs normally) or
  ``enospc`` (a ``No space left on device`` error, exit 1); or, to make a data-quality
  outcome, runs and exits 0 with its first output whole but holding nothing usable
  (:mod:`daxa_xmm.standin.degrade`): ``no_good_time``, ``no_events``, ``no_wcs`` or
  ``zero_exposure``. ``times`` limits a rule to
  its first N matching calls, counted across processes in a counter file under
  ``DAXA_STANDIN_STATE`` (or beside the call log) with ``fcntl.flock``.
- ``DAXA_STANDIN_DURATIONS``: JSON ``{task: seconds}`` or ``{task: [min, max]}``; a range
  picks a deterministic pseudo-random duration per argv.
- ``DAXA_STANDIN_LOG``: a JSONL file; one line per call, appended under ``flock``.
"""

from __future__ import annotations

__all__ = ["ACTIONS", "DEGRADING", "FaultRule", "load_rules", "claim_rule", "duration_for", "append_call_log", "read_call_log"]

import fcntl
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

#: typing.TYPE_CHECKING without importing typing, which every stand-in call would pay for
#: (mypy treats a name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The degrading actions (daxa_xmm.standin.degrade) are listed here: this module is imported
#: by every stand-in call, that one only by a call that is degraded.
DEGRADING = frozenset({"no_good_time", "no_events", "no_wcs", "zero_exposure"})
ACTIONS = frozenset({"fail", "hang", "crash", "corrupt", "sleep", "enospc"}) | DEGRADING


class FaultRule:
    """One fault rule; ``index`` is its position in the list, used to count its uses.
    (A plain class, for the reason given at :class:`~daxa_xmm.standin.common.TaskContext`.)"""

    __slots__ = ("index", "task", "match", "action", "seconds", "name", "message", "times")

    def __init__(self, index: int, task: str, match: str, action: str, seconds: float = 0.0,
                 name: str = "StandinFault", message: str = "fault injected by the SAS stand-in",
                 times: int | None = None) -> None:
        self.index, self.task, self.match, self.action = index, task, match, action
        self.seconds, self.name, self.message, self.times = seconds, name, message, times

    def matches(self, task: str, haystack: str) -> bool:
        """Whether this rule is about ``task`` and its ``match`` is in ``haystack``."""
        return self.task in (task, "*") and self.match in haystack


def _load_json(value: str) -> Any:
    """Inline JSON, or the content of the file it names."""
    text = value.strip()
    if text[:1] in "[{":
        return json.loads(text)
    return json.loads(Path(text).read_text())


def load_rules(env: Mapping[str, str]) -> list[FaultRule]:
    """The fault rules of ``DAXA_STANDIN_FAULTS`` (empty when unset).

    Raises:
        ValueError: a rule with an unknown action or without a task.
    """
    raw = env.get("DAXA_STANDIN_FAULTS", "")
    if not raw.strip():
        return []
    data = _load_json(raw)
    if isinstance(data, dict):
        data = [data]
    rules = []
    for i, item in enumerate(data):
        action = item.get("action", "fail")
        if action not in ACTIONS or "task" not in item:
            raise ValueError(f"bad stand-in fault rule #{i}: {item!r}")
        rules.append(
            FaultRule(
                index=i,
                task=item["task"],
                match=item.get("match", ""),
                action=action,
                seconds=float(item.get("seconds", 0.0)),
                name=item.get("name", "StandinFault"),
                message=item.get("message", "fault injected by the SAS stand-in"),
                times=int(item["times"]) if item.get("times") is not None else None,
            )
        )
    return rules


def _state_dir(env: Mapping[str, str]) -> Path | None:
    """Where the ``times`` counters live: DAXA_STANDIN_STATE, else beside the call log."""
    if env.get("DAXA_STANDIN_STATE"):
        return Path(env["DAXA_STANDIN_STATE"])
    if env.get("DAXA_STANDIN_LOG"):
        return Path(env["DAXA_STANDIN_LOG"]).parent
    return None


def _rules_key(env: Mapping[str, str]) -> str:
    """A short hash of the rule set, so that two rule sets never share counters."""
    import hashlib

    return hashlib.sha1(env.get("DAXA_STANDIN_FAULTS", "").encode()).hexdigest()[:12]


def claim_rule(rule: FaultRule, env: Mapping[str, str]) -> bool:
    """Whether ``rule`` still applies to this call; counts the use when ``times`` is set.

    The counter file holds ``{rule index: uses}``, read and written under an exclusive
    ``flock`` so that concurrent stand-in processes never apply a rule more than N times.
    """
    if rule.times is None:
        return True
    state = _state_dir(env)
    if state is None:
        raise ValueError("a fault rule with 'times' needs DAXA_STANDIN_STATE or DAXA_STANDIN_LOG")
    state.mkdir(parents=True, exist_ok=True)
    path = state / f"standin-fault-counts-{_rules_key(env)}.json"
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            text = fh.read()
            counts = json.loads(text) if text.strip() else {}
            used = int(counts.get(str(rule.index), 0))
            if used >= rule.times:
                return False
            counts[str(rule.index)] = used + 1
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(counts))
            fh.flush()
            os.fsync(fh.fileno())
            return True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def duration_for(task: str, argv: Sequence[str], env: Mapping[str, str]) -> float:
    """Seconds this call should take (``DAXA_STANDIN_DURATIONS``); 0 by default.

    A ``[min, max]`` range gives a value fixed by a hash of the task and argv, so reruns
    of the same call take the same time while different units differ.
    """
    raw = env.get("DAXA_STANDIN_DURATIONS", "")
    if not raw.strip():
        return 0.0
    spec = _load_json(raw).get(task)
    if spec is None:
        return 0.0
    if isinstance(spec, (int, float)):
        return float(spec)
    import hashlib

    lo, hi = float(spec[0]), float(spec[1])
    digest = hashlib.sha256((task + "\0" + "\0".join(argv)).encode()).digest()
    frac = int.from_bytes(digest[:8], "big") / 2**64
    return lo + (hi - lo) * frac


def append_call_log(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one JSON line to the call log under an exclusive ``flock``."""
    line = json.dumps(dict(record), sort_keys=True) + "\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_call_log(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a stand-in call log, in call order; [] when the file is absent."""
    p = Path(path)
    if not p.exists():
        return []
    with open(p, encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            return [json.loads(line) for line in fh if line.strip()]
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
