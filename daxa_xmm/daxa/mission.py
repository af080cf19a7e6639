"""XMMPointed: DAXA's mission class for pointed XMM-Newton observations, for a local archive.

DAXA's ``XMMPointed()`` fetches the table of every pointed observation from the XMM-Newton
Science Archive (XSA) and downloads the ODFs the user's filters keep. Here the archive is a
folder of ODFs already on disk: ``XMMPointed(odf_folder="/data/xmm/archive")`` reads its
table from the ODFs themselves (:mod:`daxa_xmm.daxa.mission_table`: an astropy Table where DAXA
has a pandas DataFrame), and DAXA's filters that need no network select from it as DAXA's
do. Nothing here goes on the network: what only the XSA can answer (no folder, HEASARC,
Sesame name resolution, target types) raises :class:`XsaOnlyError` saying what to pass
instead. ``Archive("name", XMMPointed(odf_folder=...))`` builds an archive as DAXA does
(:mod:`daxa_xmm.daxa.archive_build`).

The position, time and instrument filters are in :mod:`daxa_xmm.daxa.mission_filters`, whose
masks this class combines, records (``filtering_operations``) and refuses once an archive has
locked the mission, as DAXA does.
"""

from __future__ import annotations

__all__ = ["XMMPointed", "XsaOnlyError", "NoObsAfterFilterError", "MissionLockedError"]

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, SkyCoord
from astropy.table import Table

from daxa_xmm.daxa import mission_filters as mf
from daxa_xmm.daxa.mission_state import read_mission_state
from daxa_xmm.errors import ConfigError
from daxa_xmm.layout import ArchiveLayout

log = logging.getLogger(__name__)


class XsaOnlyError(ConfigError):
    """What was asked needs the XMM-Newton Science Archive (or another service); the message
    says what to pass instead."""


class NoObsAfterFilterError(ConfigError):
    """A filter left no observation (as DAXA, the mission then selects none)."""


class MissionLockedError(ConfigError):
    """The mission belongs to an archive: its selection can no longer change (as in DAXA)."""


#: DAXA's instrument names, and the long forms it converts.
_INSTRUMENTS = ("M1", "M2", "PN", "OM", "R1", "R2")
_ALT_NAMES = {"MOS1": "M1", "MOS2": "M2", "RGS1": "R1", "RGS2": "R2"}


class XMMPointed:
    """The pointed XMM-Newton observations of a local archive folder, with DAXA's filters.

    Args:
        insts: instruments to process (DAXA's default: M1, M2, PN); MOS1/RGS1... are accepted.
        save_file_path: a state file :meth:`save` wrote, to select what it selected.
        use_heasarc: DAXA's switch to fetch from HEASARC; True raises XsaOnlyError.
        odf_folder: the archive, one ODF folder per ObsID (``<obsid>/`` or ``<obsid>/odf/``).
            Required: DAXA fetches the table from the XSA instead.

    Raises:
        XsaOnlyError: without ``odf_folder``, or with ``use_heasarc``.
        LayoutError: the folder does not exist.
    """

    def __init__(self, insts: str | Sequence[str] | None = None, save_file_path: str | Path | None = None,
                 use_heasarc: bool = False, *, odf_folder: str | Path | None = None) -> None:
        if use_heasarc:
            raise XsaOnlyError("use_heasarc=True fetches the observation table from HEASARC; daxa-xmm reads a local "
                               "archive: pass odf_folder='/path/to/archive' (one ODF folder per ObsID)")
        state = read_mission_state(save_file_path) if save_file_path is not None else {}
        folder = odf_folder if odf_folder is not None else state.get("odf_folder")
        if folder is None:
            raise XsaOnlyError("XMMPointed() without a folder would query the XMM-Newton Science Archive; daxa-xmm "
                               "makes no network call: pass odf_folder='/path/to/archive' (one ODF folder per ObsID, "
                               "as the XSA delivers them, untarred)")
        self._layout = ArchiveLayout(Path(folder), Path(folder))
        self._locked = False
        self._processed = False
        self._filtering_operations: list[dict[str, Any]] = []
        self._chos_insts: list[str] = []
        self.chosen_instruments = ["M1", "M2", "PN"] if insts is None else insts
        from daxa_xmm.daxa.mission_table import read_obs_table

        self._obs_info: Table = read_obs_table(self._layout)
        self._filter_allowed = np.array(self._obs_info["science_usable"], dtype=bool)
        if state:
            self._load_state(state)

    # --- what DAXA's BaseMission names --------------------------------------------------
    @property
    def name(self) -> str:
        """DAXA's internal name, the records' top-level key."""
        return "xmm_pointed"

    @property
    def pretty_name(self) -> str:
        return "XMM-Newton Pointed"

    @property
    def coord_frame(self) -> type[FK5]:
        return FK5

    @property
    def id_regex(self) -> str:
        return "^[0-9]{10}$"

    @property
    def fov(self) -> u.Quantity:
        """The approximate field of view radius (DAXA's 15 arcmin)."""
        return u.Quantity(15, "arcmin")

    @property
    def all_mission_instruments(self) -> list[str]:
        return list(_INSTRUMENTS)

    @property
    def chosen_instruments(self) -> list[str]:
        """The instruments to process (an archive built from this mission processes these)."""
        return list(self._chos_insts)

    @chosen_instruments.setter
    def chosen_instruments(self, new_insts: str | Sequence[str]) -> None:
        self._check_unlocked()
        self._chos_insts = self.check_inst_names(new_insts)

    @property
    def odf_folder(self) -> Path:
        """The local archive (ours: where DAXA would have downloaded to)."""
        return self._layout.raw_root

    @property
    def raw_data_path(self) -> str:
        """DAXA's raw data path, with its trailing slash: the local archive folder."""
        return f"{self._layout.raw_root}/"

    @property
    def all_obs_info(self) -> Table:
        """Every observation of the folder (an astropy Table; DAXA's is a pandas DataFrame).
        Columns: see :mod:`daxa_xmm.daxa.mission_table`."""
        return self._obs_info

    @property
    def filtered_obs_info(self) -> Table:
        """The rows the filters keep."""
        return self._obs_info[self.filter_array]

    @property
    def filter_array(self) -> np.ndarray:
        """One bool per row of ``all_obs_info``: True for an observation to process."""
        return self._filter_allowed

    @filter_array.setter
    def filter_array(self, new: np.ndarray) -> None:
        new = np.asarray(new)
        if new.dtype != bool:
            raise TypeError("Please pass an array of boolean values for the filter array.")
        if len(new) != len(self._obs_info):
            raise ValueError(f"filter array of length {len(new)}, but there are {len(self._obs_info)} observations")
        self._filter_allowed = new.copy()

    @property
    def science_usable(self) -> np.ndarray:
        return np.array(self._obs_info["science_usable"], dtype=bool)

    @property
    def ra_decs(self) -> SkyCoord:
        return SkyCoord(self._obs_info["ra"], self._obs_info["dec"], frame=FK5)

    @property
    def filtered_ra_decs(self) -> SkyCoord:
        return self.ra_decs[self.filter_array]

    @property
    def obs_ids(self) -> np.ndarray:
        return np.array(self._obs_info["ObsID"])

    @property
    def filtered_obs_ids(self) -> np.ndarray:
        return self.obs_ids[self.filter_array]

    @property
    def num_obs(self) -> int:
        return len(self._obs_info)

    @property
    def num_filtered_obs(self) -> int:
        return int(self.filter_array.sum())

    @property
    def download_completed(self) -> bool:
        """Always True: the ODFs are already on disk."""
        return True

    @property
    def downloaded_type(self) -> str:
        return "raw"

    @property
    def locked(self) -> bool:
        """True once an archive holds the mission: the selection is then fixed."""
        return self._locked

    @locked.setter
    def locked(self, new_val: bool) -> None:
        if not isinstance(new_val, bool):
            raise TypeError("The value of locked must be a boolean.")
        if self._locked and not new_val:
            raise MissionLockedError("This mission has already been locked, you cannot unlock it.")
        self._locked = new_val

    @property
    def processed(self) -> bool:
        return self._processed

    @property
    def filtering_operations(self) -> list[dict[str, Any]]:
        """The filters applied, in order: ``{'name': method, 'arguments': {...}}`` each."""
        return [dict(op) for op in self._filtering_operations]

    @property
    def one_inst_per_obs(self) -> bool:
        return False

    # --- checks ------------------------------------------------------------------------
    def check_obsid_pattern(self, obs_id_to_check: str) -> bool:
        return bool(re.match(self.id_regex, obs_id_to_check))

    def check_inst_names(self, insts: str | Sequence[str], error_on_bad_inst: bool = True, show_warn: bool = True) -> list[str]:
        """DAXA's instrument check: upper case, MOS1 -> M1..., no duplicates; unknown ones
        raise ConfigError (or are dropped, with ``error_on_bad_inst=False``)."""
        names = [insts] if isinstance(insts, str) else list(insts)
        if not names or not all(isinstance(i, str) for i in names):
            raise ConfigError(f"instruments {insts!r}: pass one name or a list of names from {', '.join(_INSTRUMENTS)}")
        out = list(dict.fromkeys(_ALT_NAMES.get(i.upper(), i.upper()) for i in names))
        bad = [i for i in out if i not in _INSTRUMENTS]
        if bad and error_on_bad_inst:
            raise ConfigError(f"instruments {', '.join(bad)} are not XMM-Newton's; choose from {', '.join(_INSTRUMENTS)}")
        if show_warn and any(i.upper() in _ALT_NAMES for i in names):
            log.warning("instrument names converted to DAXA's forms: %s", ", ".join(out))
        return [i for i in out if i in _INSTRUMENTS]

    def ident_to_obsid(self, ident: str) -> str:
        """The ObsID of a record key (``0201903501PNS003`` -> ``0201903501``)."""
        return ident[:10]

    def _check_unlocked(self) -> None:
        if getattr(self, "_locked", False):
            raise MissionLockedError("This mission instance has been locked, and is now immutable.")

    # --- filters -------------------------------------------------------------------------
    def _apply(self, name: str, arguments: dict[str, Any], mask: np.ndarray, what: str) -> None:
        """Narrow the selection by ``mask``; record it; none left: select none and raise."""
        self._check_unlocked()
        new = self._filter_allowed & np.asarray(mask, dtype=bool)
        if not new.any():
            self._filter_allowed = np.zeros(len(self._obs_info), dtype=bool)
            raise NoObsAfterFilterError(f"The {what} has returned no {self.pretty_name} observations.")
        self._filter_allowed = new
        self._filtering_operations.append({"name": name, "arguments": arguments})

    def reset_filter(self) -> None:
        """Select every usable observation again and forget the filters applied."""
        self._check_unlocked()
        self._filter_allowed = self.science_usable.copy()
        self._filtering_operations = []

    def filter_on_obs_ids(self, allowed_obs_ids: str | Iterable[str], invert: bool = False) -> None:
        """Keep only these ObsIDs (``invert``: all but these)."""
        ids = [allowed_obs_ids] if isinstance(allowed_obs_ids, str) else [str(o) for o in allowed_obs_ids]
        bad = [o for o in ids if not self.check_obsid_pattern(o)]
        if bad:
            raise ConfigError(f"not XMM-Newton ObsIDs (10 digits): {', '.join(bad)}")
        mask = np.isin(self.obs_ids, ids)
        self._apply("filter_on_obs_ids", {"allowed_obs_ids": ids, "invert": invert}, ~mask if invert else mask, "ObsID search")

    def filter_on_rect_region(self, lower_left: Any, upper_right: Any) -> None:
        """Keep observations whose pointing lies in the RA-Dec box between two corners
        (SkyCoords, or [ra, dec] in degrees)."""
        mask = mf.in_box(self.ra_decs, mf.as_coords(lower_left), mf.as_coords(upper_right))
        self._apply("filter_on_rect_region", {"lower_left": lower_left, "upper_right": upper_right}, mask, "box search")

    def filter_on_positions(self, positions: Any, search_distance: Any = None, return_pos_obs_info: bool = False) -> Table | None:
        """Keep observations pointed within ``search_distance`` of any of ``positions``.

        Args:
            positions: a SkyCoord, ``[ra, dec]`` or ``[[ra, dec], ...]`` in degrees (FK5).
            search_distance: a Quantity (a number: degrees), or one per position; default
                1.2 times the field of view, as DAXA.
            return_pos_obs_info: also return which positions matched which ObsIDs: a
                Table of ``pos_ind, pos_ra, pos_dec, ObsIDs`` (DAXA: a DataFrame).
        """
        coords = mf.as_coords(positions)
        distances = mf.distances(search_distance, coords, 1.2 * self.fov)
        matched = mf.near(self.ra_decs, coords, distances)
        mask: np.ndarray = np.asarray(matched.any(axis=0))
        args = {"positions": positions, "search_distance": search_distance, "return_pos_obs_info": return_pos_obs_info}
        self._apply("filter_on_positions", args, mask, "positional search")
        return mf.position_table(coords, matched & self.filter_array, self.obs_ids) if return_pos_obs_info else None

    def filter_on_time(self, start_datetime: datetime, end_datetime: datetime, over_run: bool = True) -> None:
        """Keep observations in a time window: overlapping it (``over_run``, DAXA's default)
        or wholly inside it. Naive datetimes are UTC."""
        mask = mf.in_window(self._obs_info["start"], self._obs_info["end"], start_datetime, end_datetime, over_run)
        args = {"start_datetime": start_datetime, "end_datetime": end_datetime, "over_run": over_run}
        self._apply("filter_on_time", args, mask, "temporal search")

    def filter_on_name(self, object_name: str | Sequence[str], search_distance: Any = None, parse_name: bool = False) -> None:
        """Keep observations of the named objects.

        DAXA resolves the names with Sesame (a network service) and searches around those
        positions. The nearest local equivalent: observations whose PROPOSAL target name
        is one of these (ignoring case and spaces), plus those pointed within
        ``search_distance`` (default 1.2 times the field of view) of them.

        Raises:
            XsaOnlyError: ``parse_name=True`` (coordinates from the name: use
                filter_on_positions with them).
        """
        if parse_name:
            raise XsaOnlyError("parse_name=True reads coordinates from the name with astropy's resolver; "
                               "pass them to filter_on_positions instead")
        names = [object_name] if isinstance(object_name, str) else list(object_name)
        mask = mf.named(self._obs_info["target"], names)
        if mask.any():
            found = self.ra_decs[mask]
            found = found[np.isfinite(found.ra.deg) & np.isfinite(found.dec.deg)]
            if len(found):
                mask = mask | mf.near(self.ra_decs, found, mf.distances(search_distance, found, 1.2 * self.fov)).any(axis=0)
        args = {"object_name": object_name, "search_distance": search_distance, "parse_name": parse_name}
        self._apply("filter_on_name", args, mask, f"name search ({', '.join(names)})")

    def filter_on_target_type(self, target_type: str | Sequence[str]) -> None:
        """Not available: the ODFs hold no target category (nor does DAXA's XSA table for XMM,
        where this raises NoTargetSourceTypeInfo)."""
        raise XsaOnlyError(f"target_type={target_type!r}: no target type information is available for {self.pretty_name}; "
                           "use filter_on_name (the proposal's target name) or filter_on_positions")

    # --- data ----------------------------------------------------------------------------
    def download(self, num_cores: int | None = None, credentials: Any = None, download_products: bool = False) -> None:
        """Nothing to fetch: the ODFs are on disk already (DAXA downloads them from the XSA)."""
        if credentials is not None or download_products:
            raise XsaOnlyError("credentials and download_products concern downloads from the XSA; the ODFs here are local")
        log.info("%s: the ODFs are local (%s); nothing to download", self.pretty_name, self.odf_folder)

    def save(self, save_root_path: str | Path, state_file_name: str | None = None) -> Path:
        """Write the mission's state (folder, instruments, selection) to ``<root>/<name>_state.json``."""
        from daxa_xmm.atomic import atomic_write_json

        state = {"name": self.name, "odf_folder": str(self.odf_folder), "chosen_instruments": self.chosen_instruments,
                 "selected_obs": [str(o) for o in self.filtered_obs_ids],
                 "filtering_operations": [op["name"] for op in self._filtering_operations]}
        path = Path(save_root_path) / (state_file_name or f"{self.name}_state.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_json(path, state)

    def _load_state(self, state: dict[str, Any]) -> None:
        self.chosen_instruments = state.get("chosen_instruments", self.chosen_instruments)
        self._filter_allowed = np.isin(self.obs_ids, state.get("selected_obs", list(self.obs_ids))) & self.science_usable
        self._filtering_operations = [{"name": n, "arguments": {}} for n in state.get("filtering_operations", [])]

    def info(self) -> None:
        """Print DAXA's summary of the mission."""
        every, kept = self.all_obs_info, self.filtered_obs_info
        print("\n-----------------------------------------------------")
        print(f"Number of Observations - {self.num_obs}")
        print(f"Number of Filtered Observations - {self.num_filtered_obs}")
        print(f"Total Duration - {every['duration'].quantity.sum()}")
        print(f"Total Filtered Duration - {kept['duration'].quantity.sum()}")
        for label, table in (("", every), ("Filtered ", kept)):
            print(f"Earliest {label}Observation Date - {table['start'].min().iso if len(table) else None}")
            print(f"Latest {label}Observation Date - {table['end'].max().iso if len(table) else None}")
        print("-----------------------------------------------------\n")

    def __len__(self) -> int:
        return self.num_filtered_obs

    def __repr__(self) -> str:
        return f"XMMPointed({self.num_filtered_obs} of {self.num_obs} observations, {self.odf_folder})"

