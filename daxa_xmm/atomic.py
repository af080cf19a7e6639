"""Atomic file writes and moves: a reader sees the old file or the new one, never half of one.

A manifest or product path is trusted by later runs (a re-run skips what exists), so a write
cut short by a crash, a full disk or a killed task must not leave a truncated file at that
path. Every write goes to a temporary file beside the target (same directory, hence same
filesystem), is flushed and fsync'ed, and replaces the target with :func:`os.replace`, which
POSIX makes atomic. On any failure the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_write_stream",
    "move_into_place", "copy_into_place"]

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def _temp_beside(path: Path) -> tuple[int, Path]:
    """Create and open a new temporary file in ``path``'s directory.

    ``os.open`` with mode 0o666 lets the umask decide the permissions, as a plain ``open``
    would (``tempfile`` would leave a private 0o600 manifest behind).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        return fd, tmp


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: best effort, as some filesystems refuse to open directories."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform dependent
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - platform dependent
        pass
    finally:
        os.close(fd)


def _replace_with(target: Path, write: Callable[[BinaryIO], object], like: Path | None = None) -> Path:
    """Write a temp file beside ``target`` with ``write``, fsync it, rename it over ``target``.

    ``like``: copy its permissions and times onto the new file. On any failure the temp file
    is removed and ``target`` is as it was.
    """
    fd, tmp = _temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        if like is not None:
            shutil.copystat(like, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; create the parent folder if needed.

    Args:
        path: the target file.
        data: its complete new content.

    Returns:
        The target path.
    """
    return _replace_with(Path(path), lambda out: out.write(data))


def atomic_write_stream(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` atomically with ``write(out)``, for content too large to hold in memory
    (an ODF constituent being gunzipped)."""
    return _replace_with(Path(path), write)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically, with a trailing newline.

    The object is serialised before anything touches the disk, so an unserialisable object
    fails without even creating a temporary file.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def move_into_place(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Move the file ``src`` to ``dest`` atomically, replacing what is there.

    On one filesystem this is a single :func:`os.replace`. Across filesystems (``EXDEV``:
    a scratch disk for SAS, the archive elsewhere) the file is copied to a temporary file
    beside ``dest``, fsync'ed, renamed over ``dest``, and only then is ``src`` removed; a
    failure part way leaves ``dest`` as it was and ``src`` in place. Directories are moved
    only within one filesystem.

    Args:
        src: the file to move (usually a SAS output in the call's working directory).
        dest: its final path; the parent folder is created if needed.

    Returns:
        ``dest``.
    """
    source, target = Path(src), Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV or source.is_dir():
            raise
    else:
        _fsync_dir(target.parent)
        return target
    copy_into_place(source, target)
    source.unlink()
    return target


def copy_into_place(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy the file ``src`` to ``dest`` atomically (temp beside ``dest``, fsync, rename).

    A reader of ``dest`` sees the old file or the complete copy, never a part; ``src`` is
    left in place (a working folder's file that a later call or a resumed run reads).

    Returns:
        ``dest``.
    """
    source, target = Path(src), Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as inp:
        return _replace_with(target, lambda out: shutil.copyfileobj(inp, out, 1024 * 1024), like=source)
