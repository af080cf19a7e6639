"""``python -m deployments.postgres``: a private PostgreSQL for Prefect's server, in one command.

Why: Prefect's default database, SQLite, has one writer. With many observations at once
every task-state write queues behind it, and a SAS slot stays empty for 128-226 ms between
two calls (BENCHMARKS.md section 2); on PostgreSQL the same run left it empty 14 ms. This
command makes PostgreSQL as easy as SQLite on one machine: it creates a database cluster in
a folder of yours (once), starts it on 127.0.0.1 only, creates the ``prefect`` database and
prints the setting that points Prefect at it::

    python -m deployments.postgres start          # prints the export line below
    export PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://prefect@127.0.0.1:54329/prefect
    prefect server start                          # or python -m flows.process_archive ...
    python -m deployments.postgres stop

It uses the PostgreSQL server programs installed on the machine (``initdb``, ``pg_ctl``;
Debian/Ubuntu ``apt install postgresql``, conda ``conda install -c conda-forge postgresql``)
and never the system's own cluster. Access is by trust on the loopback interface only, as
for a local SQLite file: anyone who can log in to this machine can reach the database.
PostgreSQL refuses to run as root; run as root, the cluster belongs to ``--user`` (default
``postgres``) and lives in ``/var/lib/daxa-xmm/postgres`` unless ``--dir`` says otherwise.
"""

from __future__ import annotations

__all__ = ["DEFAULT_FOLDER", "DEFAULT_PORT", "DATABASE", "ROLE", "PostgresError", "find_bin_dir", "connection_url",
           "start", "stop", "is_running", "main"]

import argparse
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

from daxa_xmm.atomic import atomic_write_json
from daxa_xmm.errors import DaxaXmmError

#: Where the cluster lives unless ``--dir`` says otherwise; for root, a folder the
#: ``postgres`` user can enter (root's home is closed to it).
DEFAULT_FOLDER = Path("/var/lib/daxa-xmm/postgres") if os.geteuid() == 0 else Path("~/.daxa-xmm/postgres")
#: Not PostgreSQL's 5432, so that it never meets a system cluster.
DEFAULT_PORT = 54329
#: The database Prefect's server uses, and the role that owns the cluster.
DATABASE = "prefect"
ROLE = "prefect"
#: Enough for a server, its services and the flows' clients at once (Prefect opens a pool each).
MAX_CONNECTIONS = 200
_INFO = "daxa-xmm-postgres.json"


class PostgresError(DaxaXmmError):
    """The local PostgreSQL could not be set up, started or stopped; the message says why."""


def find_bin_dir(explicit: Path | None = None, folder: Path | None = None) -> Path:
    """The folder of PostgreSQL's server programs: ``explicit``, else the one the cluster in
    ``folder`` was created with (a cluster runs only under its own major version), else
    ``pg_ctl`` on PATH, else the newest Debian-style ``/usr/lib/postgresql/<version>/bin``.

    Debian puts ``initdb`` and ``pg_ctl`` outside PATH, hence the last place to look.
    """
    candidates: list[Path] = []
    if explicit is None and folder is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            explicit = Path(json.loads((folder / _INFO).read_text())["bin_dir"])
    if explicit is not None:
        candidates = [Path(explicit)]
    else:
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version_key(p.parent.name),
                          reverse=True)
        candidates += versions
    for folder in candidates:
        if all((folder / exe).is_file() for exe in ("initdb", "pg_ctl", "psql", "createdb")):
            return folder
    where = f"in {explicit}" if explicit is not None else "on PATH or under /usr/lib/postgresql/*/bin"
    raise PostgresError(
        f"PostgreSQL's server programs (initdb, pg_ctl, psql, createdb) were not found {where}. Install them "
        "(Debian/Ubuntu: apt install postgresql; conda: conda install -c conda-forge postgresql) "
        "or name their folder with --bin-dir.")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def connection_url(port: int = DEFAULT_PORT) -> str:
    """The value of ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` for the cluster on ``port``."""
    return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{port}/{DATABASE}"


def _owner(user: str | None) -> pwd.struct_passwd | None:
    """Who runs the cluster's programs: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = user or "postgres"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(f"PostgreSQL refuses to run as root, and there is no user {name!r} to run it as; "
                            "run this command as an ordinary user, or name one with --user") from None


def _check_reachable(folder: Path, owner: pwd.struct_passwd | None) -> None:
    """The cluster's owner must be able to enter every parent of ``folder`` (root's home is not)."""
    if owner is None:
        return
    for parent in reversed(folder.parents):
        st = parent.stat()
        if st.st_uid != owner.pw_uid and not st.st_mode & 0o001:
            raise PostgresError(f"{folder}: user {owner.pw_name!r} cannot enter {parent} (mode {oct(st.st_mode & 0o777)}); "
                                "choose a --dir it can reach, e.g. under /var/tmp or /srv")


def _call(argv: list[str], owner: pwd.struct_passwd | None) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL program as the cluster's owner (None: as this user)."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                          user=None if owner is None else owner.pw_uid, group=None if owner is None else owner.pw_gid)


def _run(argv: list[str], owner: pwd.struct_passwd | None, what: str) -> subprocess.CompletedProcess[str]:
    """:func:`_call`, where a failure names ``what`` and the program's own message."""
    proc = _call(argv, owner)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()
        raise PostgresError(f"{what} failed (exit {proc.returncode}): {output}")
    return proc


def _port(folder: Path) -> int:
    """The port the cluster in ``folder`` was created with (from the note :func:`start` left there)."""
    try:
        data = json.loads((folder / _INFO).read_text())
    except FileNotFoundError:
        raise PostgresError(f"{folder}: no cluster made by this command here; run 'python -m deployments.postgres "
                            f"start --dir {folder}' first") from None
    if not isinstance(data, dict) or not isinstance(data.get("port"), int):
        raise PostgresError(f"{folder / _INFO}: not a description of a cluster (no port)")
    return int(data["port"])


def _initialise(folder: Path, port: int, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
    """Create the cluster in ``folder/data``: initdb into a folder beside it, then rename, so an
    interrupted first start leaves nothing half-made that a second start would trust."""
    data = folder / "data"
    staging = folder / "data.initdb"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if owner is not None:
        os.chown(staging, owner.pw_uid, owner.pw_gid)
    _run([str(bin_dir / "initdb"), "-D", str(staging), "-U", ROLE, "-A", "trust", "-E", "UTF8", "--no-instructions"],
         owner, f"initdb in {staging}")
    # TCP on the loopback only; no Unix socket, whose path has a length limit and whose default
    # folder (/var/run/postgresql) an ordinary user cannot write.
    with open(staging / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(f"\n# daxa-xmm (python -m deployments.postgres)\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                   f"unix_socket_directories = ''\nmax_connections = {MAX_CONNECTIONS}\n")
    staging.rename(data)
    atomic_write_json(folder / _INFO, {"port": port, "database": DATABASE, "role": ROLE, "bin_dir": str(bin_dir)})


def is_running(folder: Path, bin_dir: Path | None = None, user: str | None = None) -> bool:
    """Whether the cluster in ``folder`` is running (``pg_ctl status``)."""
    folder = Path(folder).expanduser().absolute()
    if not (folder / "data" / "PG_VERSION").is_file():
        return False
    return _call([str(find_bin_dir(bin_dir, folder) / "pg_ctl"), "-D", str(folder / "data"), "status"], _owner(user)).returncode == 0


def start(folder: Path = DEFAULT_FOLDER, port: int = DEFAULT_PORT, bin_dir: Path | None = None,
          user: str | None = None) -> str:
    """Create (first time), start and provision the cluster in ``folder``; return its URL.

    Safe to repeat: an existing cluster keeps its port (the one it was created with), a running
    one is left running, and the ``prefect`` database is created only when missing.
    """
    folder = Path(folder).expanduser().absolute()
    bins = find_bin_dir(bin_dir, folder)
    owner = _owner(user)
    folder.mkdir(parents=True, exist_ok=True)
    _check_reachable(folder, owner)
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    if not (folder / "data" / "PG_VERSION").is_file():
        _initialise(folder, port, bins, owner)
    port = _port(folder)
    if not is_running(folder, bins, user):
        _run([str(bins / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "postgres.log"), "-w", "-t", "60",
              "start"], owner, f"starting PostgreSQL (log: {folder / 'postgres.log'})")
    client = ["-h", "127.0.0.1", "-p", str(port), "-U", ROLE]
    found = _run([str(bins / "psql"), *client, "-d", "postgres", "-tAc",
                  f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], owner, "asking for the database")
    if found.stdout.strip() != "1":
        _run([str(bins / "createdb"), *client, DATABASE], owner, f"creating the database {DATABASE!r}")
    return connection_url(port)


def stop(folder: Path = DEFAULT_FOLDER, bin_dir: Path | None = None, user: str | None = None) -> bool:
    """Stop the cluster in ``folder`` (fast shutdown: open sessions are ended); False if it was not running."""
    folder = Path(folder).expanduser().absolute()
    _port(folder)  # a folder this command never set up is an error, not "not running"
    bins = find_bin_dir(bin_dir, folder)
    if not is_running(folder, bins, user):
        return False
    _run([str(bins / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"], _owner(user),
         "stopping PostgreSQL")
    return True


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 1 PostgreSQL could not be set up (the message says why), 3 ``status``: not running."""
    ap = argparse.ArgumentParser(prog="python -m deployments.postgres",
                                 description="A private PostgreSQL for Prefect's server, in one command.")
    ap.add_argument("action", choices=["start", "stop", "status", "url"],
                    help="start: create if needed and start, print the setting; stop; status; url: print the URL only")
    ap.add_argument("--dir", type=Path, default=DEFAULT_FOLDER, help=f"the cluster's folder (default {DEFAULT_FOLDER})")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT,
                    help=f"TCP port on 127.0.0.1, fixed when the cluster is created (default {DEFAULT_PORT})")
    ap.add_argument("--bin-dir", type=Path, help="folder of initdb and pg_ctl (default: found on PATH or in /usr/lib/postgresql)")
    ap.add_argument("--user", help="when run as root: the user who owns and runs the cluster (default postgres)")
    ns = ap.parse_args(argv)
    folder = Path(ns.dir).expanduser().absolute()
    try:
        if ns.action == "start":
            url = start(folder, ns.port, ns.bin_dir, ns.user)
            print(f"PostgreSQL for Prefect is running (data and log in {folder}). Point Prefect's server at it:",
                  file=sys.stderr)
            print(f"export PREFECT_SERVER_DATABASE_CONNECTION_URL={url}")
        elif ns.action == "stop":
            print("stopped" if stop(folder, ns.bin_dir, ns.user) else "was not running", file=sys.stderr)
        elif ns.action == "url":
            print(connection_url(_port(folder)))
        else:
            running = is_running(folder, ns.bin_dir, ns.user)
            print(f"{'running' if running else 'not running'}: {connection_url(_port(folder))}")
            return 0 if running else 3
    except PostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
