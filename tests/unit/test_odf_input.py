"""Gzipped ODF constituents are unpacked into the products folder; the archive is untouched."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from daxa_xmm.errors import LayoutError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.unpack import unpack_odf
from daxa_xmm.standin.synth import ExposureSpec, ObsSpec, write_odf

OBSID = "0100000001"


def _archive(tmp_path: Path, gz: bool) -> ArchiveLayout:
    write_odf(tmp_path / "archive", OBSID, ObsSpec(exposures=(ExposureSpec("M1", "S001"),)), gzip=gz)
    return ArchiveLayout(tmp_path / "archive", tmp_path / "out")


def test_plain_odf_is_read_where_it_is(tmp_path: Path) -> None:
    layout = _archive(tmp_path, gz=False)
    assert unpack_odf(layout, OBSID) == layout.odf_dir(OBSID) == layout.odf_input_dir(OBSID)
    assert not layout.odf_unpacked_dir(OBSID).exists()


def test_gzipped_odf_is_unpacked_once_beside_the_products(tmp_path: Path) -> None:
    layout = _archive(tmp_path, gz=True)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in layout.odf_dir(OBSID).iterdir())
    folder = unpack_odf(layout, OBSID)
    assert folder == layout.odf_input_dir(OBSID) == tmp_path / "out" / OBSID / "odf"
    raw = {p.name for p in layout.odf_dir(OBSID).iterdir()}
    assert {p.name for p in folder.iterdir()} == {n.removesuffix(".gz") for n in raw}
    gz = next(p for p in layout.odf_dir(OBSID).iterdir() if p.name.endswith(".FIT.gz"))
    assert (folder / gz.name[:-3]).read_bytes() == gzip.decompress(gz.read_bytes())
    assert (folder / f"0828_{OBSID}_SCX00000SUM.ASC").is_symlink()  # plain files are linked
    assert layout.odf_sum_asc(OBSID).is_file()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in layout.odf_dir(OBSID).iterdir()) == before
    stamp = (folder / gz.name[:-3]).stat().st_mtime_ns
    unpack_odf(layout, OBSID)  # a resumed run unpacks nothing twice
    assert (folder / gz.name[:-3]).stat().st_mtime_ns == stamp


def test_a_corrupt_gzip_names_the_file_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    layout = _archive(tmp_path, gz=True)
    bad = next(p for p in layout.odf_dir(OBSID).iterdir() if p.name.endswith(".FIT.gz"))
    bad.write_bytes(gzip.compress(bytes(range(256)) * 40)[:100])
    with pytest.raises(LayoutError, match=bad.name):
        unpack_odf(layout, OBSID)
    folder = layout.odf_unpacked_dir(OBSID)
    assert not (folder / bad.name[:-3]).exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
