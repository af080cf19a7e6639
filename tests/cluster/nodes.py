"""Cluster nodes for the tests, on this one machine: each its own SAS set-up and slot folder.

A *node* is what a compute node of a cluster has of its own: a SAS installation (here a
stand-in installed in the node's folder), its SAS slot folder (``DAXA_XMM_SLOTS_DIR``) and,
for the tests, its own stand-in call log; the archive, the products and the stand-in's
fault counters are on the "shared filesystem" (the test's folder). What a node's SAS calls
were is then read from its own log, each call with the ``SAS_DIR`` it ran with and its
start and end, so the cap and the spread are checked per node.

:class:`DaskProcesses` runs the ``dask scheduler`` and ``dask worker`` commands as their own
processes, each worker with its node's environment, as a user starts them on a cluster.
"""

from __future__ import annotations

__all__ = ["Node", "make_node", "DaskProcesses", "process_env", "read_calls", "kill_tree", "fault_claimed"]

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daxa_xmm.sas.orphans import OWNER_ENV
from tests.shared_server import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Node:
    """One node's own folder, SAS set-up and call log."""

    name: str
    root: Path
    sas_env: dict[str, str]
    call_log: Path
    slots: Path

    def env(self, shared: Path, **extra: str) -> dict[str, str]:
        """The environment of a process on this node: the node's SAS, slots and log; the
        stand-in's fault counters and rules on the shared folder."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAXA_", "SAS_"))}
        env.update(self.sas_env)
        env.update(
            DAXA_XMM_SLOTS_DIR=str(self.slots),
            DAXA_STANDIN_LOG=str(self.call_log),
            DAXA_STANDIN_STATE=str(shared / "standin-state"),
            DAXA_STANDIN_FAULTS=str(shared / "faults.json"),
            DAXA_STANDIN_FAST="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        )
        env.update(extra)
        return env

    def calls(self) -> list[dict[str, Any]]:
        return read_calls(self.call_log)


def make_node(base: Path, name: str) -> Node:
    """A node under ``base/name``: a stand-in of its own (its ``SAS_DIR`` names the node)."""
    from daxa_xmm.standin.install import install_standin

    root = base / name
    sas_env = install_standin(root / "sas")
    sas_env["PATH"] = sas_env["PATH"].split(os.pathsep, 1)[0] + os.pathsep + "/usr/local/bin:/usr/bin:/bin"
    return Node(name, root, sas_env, root / "calls.jsonl", root / "slots")


def read_calls(log: Path) -> list[dict[str, Any]]:
    """The SAS calls of a stand-in call log (``sasversion`` left out); empty if none ran."""
    from daxa_xmm.standin.faults import read_call_log

    return [c for c in read_call_log(log) if c["task"] != "sasversion"] if log.exists() else []


def process_env(pid: int) -> dict[str, str]:
    """A live process's environment (empty once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw.split(b"\0") if b"=" in item)


def owner_pid(pid: int) -> int | None:
    """The pid of the process that started SAS process ``pid`` (its ``DAXA_XMM_OWNER``)."""
    token = process_env(pid).get(OWNER_ENV, "")
    return int(token.split(":")[0]) if token[:1].isdigit() else None


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group a test started, then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@dataclass
class DaskProcesses:
    """A ``dask scheduler`` and one ``dask worker`` per node, each its own process group."""

    folder: Path
    address: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(  # noqa: S603 - argv list
            [sys.executable, "-m", "dask", *argv], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.folder)

    def start(self, nodes: list[Node], shared: Path, *, threads: int = 1, **env: str) -> DaskProcesses:
        """The scheduler, then a worker per node (``threads``: observations at once on it; one
        by default), with ``env`` added to each node's environment; wait until all joined."""
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DAXA_", "SAS_"))}
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], base)
        for node in nodes:
            self._start(node.name, ["worker", self.address, "--name", node.name, "--nthreads", str(threads),
                                    "--no-dashboard", "--local-directory", str(node.root / "dask")],
                        node.env(shared, **env))
        self.wait_for_workers(len(nodes))
        return self

    def wait_for_workers(self, n: int, timeout_s: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout_s) as client:
            client.wait_for_workers(n, timeout=timeout_s)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            kill_tree(proc)


def wait_for_log(node: Node, predicate: Any, timeout_s: float, what: str) -> list[dict[str, Any]]:
    """Poll a node's call log until ``predicate(calls)`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        calls = node.calls()
        if predicate(calls):
            return calls
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def fault_claimed(shared: Path) -> bool:
    """Whether a stand-in call has taken its fault rule's one use (``"times": 1``) yet.

    A call is found by its folder as soon as it starts, before it reads the rules: one
    killed then has not used the fault, and its re-run would take it instead.
    """
    for path in (shared / "standin-state").glob("standin-fault-counts-*.json"):
        try:
            if any(n >= 1 for n in json.loads(path.read_text() or "{}").values()):
                return True
        except ValueError:  # being written (under the stand-in's lock, which a reader does not take)
            continue
    return False


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
