"""A real Slurm of one node for the tests: munged, slurmctld and slurmd in a temporary folder.

Debian's ``slurm-wlm`` and ``munge`` (``.ci/install-slurm.sh`` installs them), configured by
the test session itself, never the system's: the key, the sockets, the state, the spool
and the logs are in the folder, the daemons listen on free ports of 127.0.0.1, and every
client command finds the cluster by ``SLURM_CONF``. They run in the foreground as children
of the test process (``-D``/``-F``), so stopping them is killing processes it started.

What a container without systemd or cgroup delegation allows, and real clusters use too:

- ``ProctrackType=proctrack/linuxproc``: a job's processes are found by their parent pids,
  no cgroup needed (``scancel`` signals the whole tree, a ``setsid`` child included);
- ``TaskPlugin=task/none``: no CPU binding or cgroup confinement; no ``cgroup.conf``;
- no accounting daemon (``accounting_storage/none``, ``jobacct_gather/none``);
- ``SelectType=select/cons_tres`` with ``CR_CPU``: several one-core jobs share the node;
- ``SlurmdParameters=config_overrides``: the node says it has :data:`NODE_CPUS` CPUs
  whatever the machine has (two here), so a few worker jobs fit at once.
"""

from __future__ import annotations

__all__ = ["NODE_CPUS", "SlurmCluster", "missing", "start_slurm"]

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.shared_server import free_port

#: CPUs the one node offers (slurmd's config_overrides), whatever the machine has.
NODE_CPUS = 4
#: The programs the set-up runs (daemons in /usr/sbin, commands in /usr/bin on Debian).
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
_SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))


def missing() -> str | None:
    """Why a Slurm cannot be started here, or None when it can."""
    absent = [p for p in PROGRAMS if _which(p) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} not found): Debian's slurm-wlm and munge, "
                "e.g. `sudo .ci/install-slurm.sh`")
    if os.geteuid() != 0:
        return "slurmd runs jobs as their user and must run as root (CI containers do)"
    return None


_CONF = """\
ClusterName=daxatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
KillWait=5
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    """The running daemons, their folder and the configuration file clients need."""

    root: Path
    conf: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, dask-jobqueue) needs to find this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, name: str, *args: str, timeout_s: float = 30) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        done = subprocess.run([_which(name) or name, *args], env={**os.environ, **self.env},  # noqa: S603
                              capture_output=True, text=True, timeout=timeout_s, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[str]:
        """The ids of the jobs queued or running."""
        return self.command("squeue", "-h", "-o", "%i").split()

    def log(self, daemon: str) -> str:
        path = self.root / "log" / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def stop(self) -> None:
        """Cancel every job, then stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL)."""
        if self.procs.get("slurmctld") is not None and self.procs["slurmctld"].poll() is None:
            try:
                self.command("scancel", "--full", "--user", "root")
                deadline = time.monotonic() + 30
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.5)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start(cluster: SlurmCluster, name: str, argv: list[str]) -> None:
    log = (cluster.root / "log" / f"{name}.out").open("wb")
    cluster.procs[name] = subprocess.Popen(  # noqa: S603 - argv list
        argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **cluster.env}, start_new_session=True)


def _wait(what: str, ready, cluster: SlurmCluster, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not ready():
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{cluster.log(name)[-2000:]}"
                                   f"\n{(cluster.root / 'log' / f'{name}.out').read_text(errors='replace')[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} after {timeout_s} s:\n{cluster.log('slurmctld')[-2000:]}\n{cluster.log('slurmd')[-2000:]}")
        time.sleep(0.2)


def start_slurm(root: Path) -> SlurmCluster:
    """Write the configuration under ``root``, start munged, slurmctld and slurmd, and wait
    until the node is idle. On a failure what was started is stopped again.

    Raises:
        RuntimeError: a daemon exited or the node never came up, with the daemons' logs.
    """
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)  # munged refuses a key in a folder others can write
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = root / "munge" / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(_CONF.format(host=socket.gethostname(), ctld_port=free_port(), d_port=free_port(),
                                 munge_socket=socket_path, root=root, cpus=NODE_CPUS))
    cluster = SlurmCluster(root, conf)
    try:
        _start(cluster, "munged", [_which("munged") or "munged", "--foreground", "--force", f"--key-file={key}",
                                   f"--socket={socket_path}", f"--pid-file={root}/munge/munged.pid",
                                   f"--log-file={root}/log/munged.log", f"--seed-file={root}/munge/seed"])
        _wait("munged did not make its socket", socket_path.exists, cluster)
        _start(cluster, "slurmctld", [_which("slurmctld") or "slurmctld", "-D", "-f", str(conf)])
        _start(cluster, "slurmd", [_which("slurmd") or "slurmd", "-D", "-f", str(conf)])

        def idle() -> bool:
            try:
                return cluster.command("sinfo", "-h", "-o", "%T", timeout_s=10).split() == ["idle"]
            except (RuntimeError, subprocess.TimeoutExpired):
                return False

        _wait("the node did not become idle", idle, cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster
