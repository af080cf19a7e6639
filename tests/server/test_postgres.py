"""``python -m deployments.postgres``: one command gives Prefect a private PostgreSQL.

These start a real PostgreSQL cluster from the machine's own server programs (Debian's
``postgresql`` package here); they skip only where none is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deployments import postgres
from tests.shared_server import free_port

pytestmark = pytest.mark.server


def _bin_dir() -> Path:
    try:
        return postgres.find_bin_dir()
    except postgres.PostgresError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A folder PostgreSQL's own user can reach when we are root (pytest's tmp_path is not)."""
    top = Path(tempfile.mkdtemp(prefix="daxa-pg-"))
    top.chmod(0o755)
    try:
        yield top / "pg"
    finally:
        if (top / "pg" / "daxa-xmm-postgres.json").exists():
            postgres.stop(top / "pg")
        shutil.rmtree(top, ignore_errors=True)


def _ask(bin_dir: Path, url: str, sql: str) -> str:
    """Run ``sql`` through psql against what ``url`` names, as Prefect's driver would reach it."""
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+asyncpg" and parts.hostname == "127.0.0.1", url
    argv = [str(bin_dir / "psql"), "-h", parts.hostname, "-p", str(parts.port), "-U", str(parts.username),
            "-d", parts.path.lstrip("/"), "-tAc", sql]
    return subprocess.run(argv, capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout.strip()


def test_one_command_starts_a_database_prefect_can_use_and_repeating_it_changes_nothing(
        cluster_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bin_dir = _bin_dir()
    port = free_port()
    assert postgres.main(["start", "--dir", str(cluster_dir), "--port", str(port)]) == 0
    out = capsys.readouterr().out.strip()
    # stdout is exactly the line a shell can eval
    assert out == f"export PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://prefect@127.0.0.1:{port}/prefect"
    url = out.split("=", 1)[1]
    assert _ask(bin_dir, url, "select current_database()") == "prefect"
    _ask(bin_dir, url, "create table kept (x int); insert into kept values (7)")

    # again, even with another port asked for: same cluster, same port, same data
    assert postgres.main(["start", "--dir", str(cluster_dir), "--port", str(free_port())]) == 0
    assert capsys.readouterr().out.strip() == out
    assert _ask(bin_dir, url, "select x from kept") == "7"
    assert postgres.main(["url", "--dir", str(cluster_dir)]) == 0
    assert capsys.readouterr().out.strip() == url

    assert postgres.stop(cluster_dir) is True
    assert postgres.main(["status", "--dir", str(cluster_dir)]) == 3
    assert postgres.stop(cluster_dir) is False
    # and it comes back with its data
    assert postgres.start(cluster_dir) == url
    assert _ask(bin_dir, url, "select x from kept") == "7"


def test_missing_server_programs_are_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(postgres.PostgresError, match=rf"not found in {re.escape(str(tmp_path))}.*--bin-dir"):
        postgres.find_bin_dir(tmp_path)


def test_a_folder_never_set_up_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert postgres.main(["url", "--dir", str(tmp_path / "nothing")]) == 1
    assert f"{tmp_path / 'nothing'}: no cluster made by this command here" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_as_root_a_folder_the_clusters_user_cannot_enter_is_refused_before_anything_runs(tmp_path: Path) -> None:
    _bin_dir()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    # the first parent it cannot enter is named (here /tmp/pytest-of-root or ``private``)
    with pytest.raises(postgres.PostgresError, match=rf"^{re.escape(str(private / 'pg'))}: user '\w+' cannot enter /.*choose a --dir"):
        postgres.start(private / "pg", port=free_port())
    assert not (private / "pg" / "data").exists()


def test_a_cluster_keeps_the_server_programs_it_was_made_with(tmp_path: Path) -> None:
    """A cluster runs only under its own major version: after an upgrade put another pg_ctl
    first on PATH, the error names the cluster's own programs' folder, not a wrong start."""
    (tmp_path / "daxa-xmm-postgres.json").write_text('{"port": 54329, "bin_dir": "/opt/pg-9.6/bin"}')
    with pytest.raises(postgres.PostgresError, match=r"not found in /opt/pg-9\.6/bin"):
        postgres.find_bin_dir(None, tmp_path)
    _bin_dir()
    assert postgres.find_bin_dir(None, tmp_path / "elsewhere") == postgres.find_bin_dir()
