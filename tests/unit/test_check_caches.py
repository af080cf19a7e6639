"""What the plan-first check remembers (BENCHMARKS.md section 9) never hides a change.

The parsed summaries (keyed by their bytes), the expressions already checked, and one
observation's folder lookups (:mod:`daxa_xmm.pipeline.snapshot`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daxa_xmm.errors import FilterExpressionError, LayoutError, SummaryParseError
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.summary import read_odf_summary
from daxa_xmm.pipeline.snapshot import snapshot
from daxa_xmm.sas.filters import validate_expression
from tests.summary_writer import Exp, Inst, write_summary


def test_an_unchanged_summary_is_parsed_once_and_a_changed_one_again(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "0828_0201903501_SCX00000SUM.SAS", [Inst("PN", [Exp("003")])])
    first = read_odf_summary(path)
    assert read_odf_summary(path, obs_id="0201903501") is first  # the same file: not parsed again
    with pytest.raises(SummaryParseError, match="expected 0000000001"):  # the ObsID is still checked
        read_odf_summary(path, obs_id="0000000001")

    stat = path.stat()
    write_summary(path, [Inst("PN", [Exp("003")]), Inst("M1", [Exp("001")])])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the size tells
    assert set(read_odf_summary(path).instruments) == {"PN", "M1"}

    size = path.stat().st_size
    text = path.read_text().replace("M1", "M2")  # same size, new mtime
    path.write_text(text)
    assert path.stat().st_size == size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert set(read_odf_summary(path).instruments) == {"PN", "M2"}

    path.write_text(text[: len(text) // 2])  # cut short: its own error, every time
    for _ in range(2):
        with pytest.raises(SummaryParseError):
            read_odf_summary(path)
    path.unlink()
    with pytest.raises(SummaryParseError):
        read_odf_summary(path)


def test_a_replaced_summary_is_parsed_again_even_with_its_old_size_and_mtime(tmp_path: Path) -> None:
    path = write_summary(tmp_path / "s.SAS", [Inst("M1", [Exp("003")])])
    stat = path.stat()
    assert set(read_odf_summary(path).instruments) == {"M1"}
    other = write_summary(tmp_path / "t.SAS", [Inst("M2", [Exp("003")])])
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)  # another file (inode) of the same size and time
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert set(read_odf_summary(path).instruments) == {"M2"}


def test_a_summary_rewritten_in_place_with_its_size_mtime_and_inode_is_parsed_again(tmp_path: Path) -> None:
    # what a size+mtime+inode key misses: a rewrite within one mtime tick (coarse clocks,
    # network file systems) that keeps the length
    path = write_summary(tmp_path / "s.SAS", [Inst("M1", [Exp("003")])])
    stat = path.stat()
    assert set(read_odf_summary(path).instruments) == {"M1"}
    with path.open("r+b") as f:  # the same file (inode), rewritten in place
        data = f.read()
        f.seek(0)
        f.write(data.replace(b"M1", b"M2"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    assert set(read_odf_summary(path).instruments) == {"M2"}


def test_a_summary_copied_elsewhere_names_its_own_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    path = write_summary(tmp_path / "a" / "s.SAS", [Inst("PN", [Exp("003")])])
    copy = tmp_path / "b" / "s.SAS"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    assert read_odf_summary(path).path == str(path)
    assert read_odf_summary(copy).path == str(copy)


def test_a_checked_expression_is_remembered_and_a_bad_one_always_refused() -> None:
    expr = "PATTERN <= 4 && (FLAG & 0xfb0825) == 0 && PI in [500:2000]"
    assert validate_expression(expr) == expr
    assert validate_expression(expr) == expr
    for _ in range(2):
        with pytest.raises(FilterExpressionError, match="unclosed"):
            validate_expression("PI in [500:2000")
    with pytest.raises(FilterExpressionError):
        validate_expression(["PI > 2"])  # type: ignore[arg-type]


def test_a_snapshot_answers_as_the_layout_did_when_first_asked(tmp_path: Path) -> None:
    (tmp_path / "raw" / "0201903501").mkdir(parents=True)
    (tmp_path / "raw" / "0201903501" / "0828_0201903501_SCX00000SUM.ASC").write_text("x")
    (tmp_path / "out").mkdir()
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    snap = snapshot(layout)
    assert (snap.raw_root, snap.out_root) == (layout.raw_root, layout.out_root)
    assert snap.obs_dir("0201903501") == layout.obs_dir("0201903501")
    assert snap.odf_files("0201903501") == layout.odf_files("0201903501")
    assert snap.odf_sum_asc("0201903501") == layout.odf_sum_asc("0201903501")
    assert snap.odf_is_gzipped("0201903501") is layout.odf_is_gzipped("0201903501") is False
    snap.odf_files("0201903501").clear()  # a caller's copy: the snapshot keeps its own
    assert snap.odf_files("0201903501") == layout.odf_files("0201903501")
    with pytest.raises(LayoutError):  # a bad ObsID is refused each time
        snap.obs_dir("../x")
    with pytest.raises(LayoutError):
        snap.obs_dir("../x")

    # a products folder replaced by a link leading out: the next snapshot (the next
    # observation's check) and the layout itself refuse it
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out" / "0201903501").symlink_to(outside)
    with pytest.raises(LayoutError):
        layout.obs_dir("0201903501")
    with pytest.raises(LayoutError):
        snapshot(layout).obs_dir("0201903501")


def test_a_snapshot_lists_an_odf_folder_as_the_layout_does(tmp_path: Path) -> None:
    obsid = "0201903501"
    odf = tmp_path / "raw" / obsid
    odf.mkdir(parents=True)
    (tmp_path / "out").mkdir()
    names = ["0828_0201903501_SCX00000SUM.ASC", "0828_0201903501_PNS00301IME.FIT", "0828_0201903501_M1S00100.FIT.gz",
             "0828_0201903501_a.fit", "0828_0201903501_Z.asc", "0828_0201903501_b.txt", "0828_0000000001_c.FIT",
             "notes.ASC", "0828_0201903501_B.FIT"]
    for name in names:
        (odf / name).write_text("x")
    (odf / "0828_0201903501_dir.FIT").mkdir()  # a folder named as a constituent is none
    layout = ArchiveLayout(tmp_path / "raw", tmp_path / "out")
    listed = layout.odf_files(obsid)
    assert [p.name for p in listed] == sorted(n for n in names if "_0201903501_" in n and not n.endswith(".txt"))
    assert snapshot(layout).odf_files(obsid) == listed

    (odf / "0828_0201903501_L.FIT").symlink_to(odf / "0828_0201903501_B.FIT")  # a link inside: listed
    (odf / "0828_0201903501_broken.FIT").symlink_to(odf / "gone")  # a broken link: not a file
    assert snapshot(layout).odf_files(obsid) == layout.odf_files(obsid)
    assert odf / "0828_0201903501_L.FIT" in layout.odf_files(obsid)

    outside = tmp_path / "elsewhere.FIT"
    outside.write_text("x")
    (odf / "0828_0201903501_out.FIT").symlink_to(outside)  # a link leading out: refused by both
    with pytest.raises(LayoutError):
        layout.odf_files(obsid)
    with pytest.raises(LayoutError):
        snapshot(layout).odf_files(obsid)
    with pytest.raises(LayoutError):  # no folder at all
        snapshot(layout).odf_files("0000000002")
