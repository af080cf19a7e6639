"""One observation's folders, looked up once: the plan-first check's view of the layout.

The plan-first check (:mod:`daxa_xmm.pipeline.uptodate`) builds every call of an
observation, and each builder asks the layout for the observation's folders again: some 50
times per observation its products folder, each time resolved through every symlink to
keep it inside the archive (:func:`daxa_xmm.layout._inside`), and three times its ODF
listing. At 15,000 observations that was a quarter of the check (BENCHMARKS.md section 5b).

:class:`SnapshotLayout` answers those questions as :class:`~daxa_xmm.layout.ArchiveLayout`
does, the first time it is asked, and gives the same answer for the rest of its life (a
lookup that raised is made again when asked again). The check makes one per observation
and drops it when the observation is decided, so what it decides is what the layout said at that moment; a
folder replaced by a symlink leading out is refused at the next observation's check and
by the run itself, which always uses a plain :class:`~daxa_xmm.layout.ArchiveLayout`.
"""

from __future__ import annotations

__all__ = ["SnapshotLayout", "snapshot"]

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from daxa_xmm.layout import ODF_SUFFIXES, ArchiveLayout

T = TypeVar("T")


class SnapshotLayout(ArchiveLayout):
    """An :class:`~daxa_xmm.layout.ArchiveLayout` whose folder lookups (products folder, ODF
    folder, ODF listing, gzip or not) are made once each; every name below them is made
    from those as the base class makes it. Meant for one observation's check, not to keep."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "_answers", {})

    def _once(self, key: tuple[str, str], look: Callable[[str], T], obsid: str) -> T:
        """``look(obsid)``, remembered; a lookup that raises is not (it raises again when asked again)."""
        answers: dict[tuple[str, str], Any] = self._answers  # type: ignore[attr-defined]
        if key not in answers:
            answers[key] = look(obsid)
        return answers[key]

    def obs_dir(self, obsid: str) -> Path:
        return self._once(("obs_dir", obsid), super().obs_dir, obsid)

    def odf_dir(self, obsid: str) -> Path:
        return self._once(("odf_dir", obsid), super().odf_dir, obsid)

    def odf_files(self, obsid: str) -> list[Path]:
        return list(self._once(("odf_files", obsid), self._odf_listing, obsid))

    def _odf_listing(self, obsid: str) -> list[Path]:
        """:meth:`ArchiveLayout.odf_files`, the same list, from one ``scandir`` of the folder
        (no stat per file, names sorted as strings: in one folder that is the order of their
        paths). A folder with a linked constituent, or one that cannot be listed, is left to
        the base class, which resolves each link (and refuses one leading out) or says why."""
        folder = self.odf_dir(obsid)
        names: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if f"_{obsid}_" not in name or not name.endswith(ODF_SUFFIXES):
                        continue
                    if entry.is_symlink():
                        return super().odf_files(obsid)
                    if entry.is_file():
                        names.append(name)
        except OSError:
            return super().odf_files(obsid)
        names.sort()
        return [folder / name for name in names]

    def odf_is_gzipped(self, obsid: str) -> bool:
        return self._once(("odf_is_gzipped", obsid), super().odf_is_gzipped, obsid)


def snapshot(layout: ArchiveLayout) -> SnapshotLayout:
    """A fresh :class:`SnapshotLayout` of ``layout``'s two roots."""
    return SnapshotLayout(layout.raw_root, layout.out_root)
