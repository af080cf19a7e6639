"""Atomic writes and moves: the old content survives any failure, and no temp file is left."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

import daxa_xmm.atomic as atomic
from daxa_xmm.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, move_into_place


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_text_bytes_json(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    assert atomic_write_text(target, "héllo") == target
    assert target.read_text(encoding="utf-8") == "héllo"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    atomic_write_json(tmp_path / "m.json", {"b": [1, 2], "a": None})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == {"b": [1, 2], "a": None} and text.endswith("\n")
    assert _leftovers(tmp_path) == [] and _leftovers(target.parent) == []


def test_permissions_follow_umask_not_tempfile(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "m.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failure_mid_write_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str) -> None:
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def boom(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, fail_at, boom)
    with pytest.raises(OSError, match="No space"):
        atomic_write_text(target, "new content " * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_interrupt_mid_write_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_unserialisable_json_touches_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    target.write_text("{}")
    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert target.read_text() == "{}" and _leftovers(tmp_path) == []


def test_move_same_filesystem(tmp_path: Path) -> None:
    src = tmp_path / "work" / "out.fits"
    src.parent.mkdir()
    src.write_text("new")
    dest = tmp_path / "products" / "deep" / "out.fits"
    assert move_into_place(src, dest) == dest
    assert dest.read_text() == "new" and not src.exists()


def _exdev_for(src: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make os.replace from ``src`` fail as between two filesystems."""
    real = os.replace

    def replace(a: object, b: object) -> None:
        if Path(a) == src:  # type: ignore[arg-type]
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "replace", replace)


def test_move_across_filesystems_copies_then_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "scratch" / "out.fits"
    src.parent.mkdir()
    src.write_bytes(b"x" * 3_000_000)
    dest = tmp_path / "archive" / "out.fits"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    _exdev_for(src, monkeypatch)
    move_into_place(src, dest)
    assert dest.read_bytes() == b"x" * 3_000_000
    assert not src.exists()
    assert _leftovers(dest.parent) == []


def test_move_across_filesystems_failure_keeps_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "scratch" / "out.fits"
    src.parent.mkdir()
    src.write_bytes(b"new")
    dest = tmp_path / "archive" / "out.fits"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    _exdev_for(src, monkeypatch)

    def boom(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError, match="I/O"):
        move_into_place(src, dest)
    monkeypatch.undo()
    assert dest.read_bytes() == b"old" and src.read_bytes() == b"new"
    assert _leftovers(dest.parent) == []


def test_move_other_errors_propagate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        move_into_place(tmp_path / "missing", tmp_path / "dest")
