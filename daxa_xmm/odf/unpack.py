"""Hand SAS plain ODF files: gunzip gzipped constituents into the products folder.

The XMM-Newton Science Archive may deliver constituents gzipped (``*.FIT.gz``). odfingest's
and epchain's pages say nothing about gzipped input (only emchain's says the event files
may be gzipped), and DAXA 0.3.7 unpacks every constituent before SAS sees it. So do we,
under every reading: when an ODF holds any ``.gz`` file, ``<out>/<obsid>/odf/`` receives the
unpacked constituents (written beside, then renamed) and links to the plain ones, and SAS
reads the ODF from there. The archive itself is never written to.
"""

from __future__ import annotations

__all__ = ["unpack_odf", "repoint_summary"]

import gzip
import logging
import os
import shutil
import zlib
from pathlib import Path

from daxa_xmm.atomic import atomic_write_bytes, atomic_write_stream
from daxa_xmm.errors import LayoutError
from daxa_xmm.layout import ArchiveLayout

log = logging.getLogger(__name__)


def _current(dest: Path, source: Path) -> bool:
    """True when ``dest`` was unpacked from ``source`` as it is now (same or later mtime)."""
    try:
        return dest.stat().st_mtime_ns >= source.stat().st_mtime_ns and dest.stat().st_size > 0
    except FileNotFoundError:
        return False


def unpack_odf(layout: ArchiveLayout, obsid: str) -> Path:
    """The folder SAS should read ``obsid``'s ODF from, made ready.

    Without gzipped constituents that is the archive's own folder, untouched. Otherwise
    each ``X.gz`` is unpacked to ``odf/X`` (unless already unpacked from the same file) and
    each plain constituent is linked there, so a resumed run unpacks nothing twice.

    Raises:
        LayoutError: a constituent is not valid gzip data (naming it); nothing half-written
            is left behind.
    """
    if not layout.odf_is_gzipped(obsid):
        return layout.odf_dir(obsid)
    target = layout.odf_input_dir(obsid)
    target.mkdir(parents=True, exist_ok=True)
    for source in layout.odf_files(obsid):
        if source.name.endswith(".gz"):
            dest = target / source.name[: -len(".gz")]
            if _current(dest, source):
                continue

            def write(out, source: Path = source) -> None:
                with gzip.open(source, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)

            try:
                atomic_write_stream(dest, write)
            except (OSError, EOFError, zlib.error) as exc:
                raise LayoutError(f"ObsID {obsid}: cannot gunzip {source}: {exc}") from None
            log.info("%s: unpacked %s", obsid, source.name)
        else:
            dest = target / source.name
            if dest.is_symlink() and os.readlink(dest) == str(source.resolve()):
                continue
            tmp = target / f".{source.name}.link"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(source.resolve())
            os.replace(tmp, dest)
    return target


def repoint_summary(summary: Path, odf_dir: Path) -> bool:
    """Make the odfingest summary's ``PATH`` name ``odf_dir``; True when it had to change.

    SAS reads the constituents from the folder ``PATH`` names, and "changing the location of
    the ODF files after this file is produced makes necessary to edit the file accordingly
    or run the odfingest command again" (SAS Users Guide, odfingest). Unpacked constituents
    (``<out>/<obsid>/odf/``) move with a moved products folder: editing the line keeps the
    observation up to date instead of redoing odfingest and everything after it. A summary
    not there yet, or without ``PATH`` (``writepath=no``), is left alone.
    """
    try:
        lines = summary.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return False
    want = str(odf_dir.resolve())
    for k, line in enumerate(lines):
        if line.startswith(b"PATH "):
            if os.path.realpath(os.fsdecode(line[5:].strip())) == want:
                return False
            lines[k] = b"PATH " + os.fsencode(want) + b"\n"
            atomic_write_bytes(summary, b"".join(lines))
            log.info("%s: PATH now names %s", summary.name, want)
            return True
    return False
