"""A mission's saved state: what :meth:`XMMPointed.save` writes and ``save_file_path`` reads.

DAXA saves each mission of an archive (``<archive>/.save_info/<mission>_state.json``) so
that ``Archive(name)`` brings the archive back as it was; here the state is the folder, the
chosen instruments and the selected ObsIDs (and the names of the filters that selected
them), which is all a local archive needs to select the same observations again.
"""

from __future__ import annotations

__all__ = ["read_mission_state"]

import json
from pathlib import Path
from typing import Any

from daxa_xmm.errors import ConfigError


def read_mission_state(path: str | Path) -> dict[str, Any]:
    """The state saved in ``path``.

    Raises:
        ConfigError: unreadable, or not an xmm_pointed state.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"save_file_path={str(path)!r}: cannot read the mission state: {exc}") from None
    if not isinstance(data, dict) or data.get("name") != "xmm_pointed" or "odf_folder" not in data:
        raise ConfigError(f"save_file_path={str(path)!r}: not an xmm_pointed mission state")
    return data
