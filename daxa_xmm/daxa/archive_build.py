"""``Archive(archive_name, missions)`` as DAXA builds it, and what the Archive prints.

DAXA keeps an archive under ``<output>/archives/<name>/`` (``output`` is its
``daxa_save_path``, ``daxa_output/`` by default), with each observation's products in
``processed_data/xmm_pointed/<obsid>/`` and the mission states in ``.save_info/``; an
existing archive of that name is read back (the missions passed are disregarded, with a
warning) unless ``clobber=True``, which deletes it first. Here the same folders are used:
the products folder of the archive's :class:`~daxa_xmm.layout.ArchiveLayout` is
``processed_data/xmm_pointed``, so ``get_current_data_path`` gives DAXA's path, and the
mission's state is saved as DAXA saves it (:meth:`XMMPointed.save`). The ODFs are read from
the mission's folder, never copied (DAXA downloaded them to ``xmm_pointed_raw/``).

DAXA's ``download_products`` is accepted and does nothing (DAXA 0.3.7 does not download
XMM products either); ``use_preprocessed=True`` would need the XSA's pipeline products and
raises. DAXA reads ``daxa_save_path`` from its own configuration file; here it is the
``output`` argument.
"""

from __future__ import annotations

__all__ = ["MissionArchive", "build_from_missions", "print_info"]

import logging
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout

if TYPE_CHECKING:  # pragma: no cover
    from daxa_xmm.daxa.mission import XMMPointed

log = logging.getLogger(__name__)

#: DAXA's default ``daxa_save_path``.
DEFAULT_OUTPUT = "daxa_output"


@dataclass(frozen=True)
class MissionArchive:
    """What an Archive built from missions knows: its name and folder, layout and mission."""

    name: str
    path: Path
    layout: ArchiveLayout
    mission: XMMPointed


def _state_file(path: Path) -> Path:
    return path / ".save_info" / "xmm_pointed_state.json"


def _one_mission(missions: Any) -> XMMPointed | None:
    from daxa_xmm.daxa.mission import XMMPointed

    if missions is None:
        return None
    chosen = [missions] if isinstance(missions, XMMPointed) else list(missions) if isinstance(missions, Sequence) else None
    if chosen is None or not chosen or not all(isinstance(m, XMMPointed) for m in chosen):
        raise ConfigError(f"missions={missions!r}: pass an XMMPointed (daxa_xmm.daxa.mission), or a list holding one")
    if len(chosen) > 1:
        raise ConfigError("daxa-xmm processes one mission, xmm_pointed: pass one XMMPointed "
                          "(DAXA refuses two instances of one mission too)")
    return chosen[0]


def build_from_missions(archive_name: str, missions: Any, clobber: bool = False, download_products: bool | dict = True,
                        use_preprocessed: bool | dict = False, output: str | Path | None = None) -> MissionArchive:
    """The archive ``archive_name`` of ``missions``, new or read back (see the module docstring).

    Raises:
        ConfigError: no mission for a new archive, not an XMMPointed, ``use_preprocessed``.
    """
    from daxa_xmm.daxa.mission import XMMPointed

    if not isinstance(archive_name, str) or not archive_name or "/" in archive_name or archive_name in (".", ".."):
        raise ConfigError(f"archive_name={archive_name!r} must be a plain folder name")
    if use_preprocessed is True or (isinstance(use_preprocessed, dict) and any(use_preprocessed.values())):
        raise ConfigError("use_preprocessed=True uses the XSA's pipeline products, which daxa-xmm does not download; "
                          "process the ODFs instead (the step functions of flows.daxa_steps)")
    path = (Path(output if output is not None else DEFAULT_OUTPUT) / "archives" / archive_name).absolute()
    mission = _one_mission(missions)
    if clobber and path.exists():
        warnings.warn(f"An archive called {archive_name} already existed, but as 'clobber=True' it has been deleted and "
                      "overwritten.", stacklevel=3)
        shutil.rmtree(path)
    state = _state_file(path)
    if state.exists():
        if mission is not None:
            warnings.warn("Anything passed to 'missions' when loading in an existing archive is disregarded - missions are "
                          "loaded back in as they were when the archive was last saved.", stacklevel=3)
        mission = XMMPointed(save_file_path=state)
    elif mission is None:
        raise ConfigError(f"The 'missions' argument cannot be None when creating a new archive ({path} holds none).")
    mission.locked = True
    mission.save(state.parent)
    layout = ArchiveLayout(mission.odf_folder, path / "processed_data" / mission.name)
    return MissionArchive(archive_name, path, layout, mission)


def print_info(name: str, missions: Sequence[XMMPointed], final: dict[str, bool]) -> None:
    """DAXA's ``Archive.info()`` (daxa-xmm does not version archives: always v0.0.0)."""
    rows = [m.filtered_obs_info for m in missions if len(m)]
    print("\n-----------------------------------------------------")
    print(name)
    print("-----------------------------------------------------")
    print("Version - v0.0.0")
    print(f"Number of missions - {len(missions)}")
    print(f"Total number of observations - {sum(len(m) for m in missions)}")
    print(f"Beginning of earliest observation - {min(r['start'].min() for r in rows).iso if rows else None}")
    print(f"End of latest observation - {max(r['end'].max() for r in rows).iso if rows else None}")
    for m in missions:
        done = len(m) > 0 and all(final.get(str(o), False) for o in m.filtered_obs_ids)
        print("")
        print(f"-- {m.pretty_name} --")
        print(f"   Internal DAXA name - {m.name}")
        print(f"   Chosen instruments - {', '.join(m.chosen_instruments)}")
        print(f"   Number of observations - {len(m)}")
        print(f"   Fully Processed - {done}")
    print("-----------------------------------------------------\n")
