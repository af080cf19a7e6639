"""The storage policy removes only what lies in the observation's products folder."""

from __future__ import annotations

from pathlib import Path

from daxa_xmm.pipeline.storage import _inside


def test_a_path_through_a_folder_linked_out_is_not_inside(tmp_path: Path) -> None:
    obs = tmp_path / "out" / "0201903501"
    (obs / "events").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (obs / "linked").symlink_to(outside)
    (obs / "to_file").symlink_to(outside / "f.fits")
    assert _inside(obs, obs / "events" / "a.fits")
    assert _inside(obs, obs / "to_file")  # the link itself: removing it removes the link
    assert not _inside(obs, obs / "linked" / "f.fits")  # would remove a file outside
    assert not _inside(obs, tmp_path / "out" / "other.fits")
