"""Reading emanom's verdict on which MOS CCDs are in an anomalous state.

emanom (SAS >= 19) writes one line per MOS CCD into its log (``mos1S001-anom.log``). The
lines read here carry ``CCD: <n>`` and, later on the same line, ``Status: <code>``; any other
tokens may sit between or around them, spacing is free, and every other line is ignored.
The SAS stand-in writes exactly this form::

    CCD: 2  Hardness: 0.512  Counts in corner: 1234  Status: G

The state codes (emanom's documentation):

- ``G`` good at all energies
- ``I`` intermediate for E < 1 keV
- ``B`` bad for E < 1 keV
- ``O`` off, chip not in use
- ``U`` undetermined (low band counts <= 0)

DAXA 0.3.7 filtered on the list of *all* valid states, so B and O CCDs were always kept;
:func:`parse_emanom_out` returns only CCDs whose state is acceptable.
"""

from __future__ import annotations

__all__ = [
    "VALID_STATES",
    "EMANOM_MIN_SAS",
    "parse_emanom_states",
    "parse_emanom_out",
    "keep_ccds",
    "emanom_supported",
]

import re
from collections.abc import Iterable
from pathlib import Path

from daxa_xmm.errors import EmanomParseError, SasVersionError
from daxa_xmm.sas.version import SasVersion, parse_sas_version

#: Every state emanom reports.
VALID_STATES: tuple[str, ...] = ("G", "I", "B", "O", "U")
#: emanom first shipped with SAS 19.
EMANOM_MIN_SAS: tuple[int, int, int] = (19, 0, 0)
#: No real log comes near this; refuses to read an event list passed by mistake.
MAX_LOG_BYTES = 4 * 1024 * 1024

_LINE = re.compile(r"\bCCD\s*:\s*(\d+)\b.*?\bStatus\s*:\s*([A-Za-z]\w*)", re.IGNORECASE)


def parse_emanom_states(log_file_path: str | Path) -> dict[int, str]:
    """Every CCD of an emanom log with its state letter, e.g. ``{1: 'G', 4: 'B'}``.

    Args:
        log_file_path: the emanom log.

    Raises:
        EmanomParseError: the file is missing or unreadable, holds no CCD line, a state
            that is not one of G, I, B, O, U, or two different states for one CCD. The
            message names the file (and line).
    """
    path = Path(log_file_path)
    try:
        if path.stat().st_size > MAX_LOG_BYTES:
            raise EmanomParseError(f"{path}: too large to be an emanom log")
        text = path.read_bytes().decode("utf-8", errors="replace")
    except EmanomParseError:
        raise
    except FileNotFoundError:
        raise EmanomParseError(f"{path}: emanom log not found") from None
    except OSError as exc:
        raise EmanomParseError(f"{path}: cannot read emanom log: {exc.strerror or exc}") from None
    states: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _LINE.search(line)
        if m is None:
            continue
        ccd, state = int(m[1]), m[2].upper()
        if state not in VALID_STATES:
            raise EmanomParseError(f"{path}, line {number}: CCD {ccd} has unknown state {m[2]!r} (valid: {', '.join(VALID_STATES)})")
        if states.get(ccd, state) != state:
            raise EmanomParseError(f"{path}, line {number}: CCD {ccd} reported as {states[ccd]} and as {state}")
        states[ccd] = state
    if not states:
        raise EmanomParseError(f"{path}: no 'CCD: <n> ... Status: <code>' line; not an emanom log?")
    return dict(sorted(states.items()))


def _check_states(acceptable_states: str | Iterable[str]) -> frozenset[str]:
    states = [acceptable_states] if isinstance(acceptable_states, str) else list(acceptable_states)
    bad = [s for s in states if not isinstance(s, str) or s.upper() not in VALID_STATES]
    if bad:
        raise EmanomParseError(f"acceptable_states: {bad!r} not among the valid states {', '.join(VALID_STATES)}")
    if not states:
        raise EmanomParseError("acceptable_states is empty: no CCD could ever be kept")
    return frozenset(s.upper() for s in states)


def parse_emanom_out(
    log_file_path: str | Path, acceptable_states: str | Iterable[str] = ("G", "I", "U")
) -> list[int]:
    """DAXA's ``parse_emanom_out``: the CCDs of an emanom log whose state is acceptable.

    Args:
        log_file_path: the emanom log (``mos1S001-anom.log``).
        acceptable_states: the states to keep, from G, I, B, O, U (one letter or several).
            The default keeps good, intermediate and undetermined CCDs.

    Returns:
        The accepted CCD numbers, ascending (for ``CCDNR in ...`` in the cleaning filter).

    Raises:
        EmanomParseError: an invalid or empty ``acceptable_states``, or any problem
            :func:`parse_emanom_states` reports.
    """
    wanted = _check_states(acceptable_states)
    return [ccd for ccd, state in parse_emanom_states(log_file_path).items() if state in wanted]


def keep_ccds(
    log_file_path: str | Path, ccds: Iterable[int], acceptable_states: str | Iterable[str] = ("G", "I", "U")
) -> list[int]:
    """The CCDs of a MOS exposure to keep in its cleaned list, given emanom's verdict.

    emanom judges chips 2-7 only (chip 1, the central CCD, has no corner data), so a CCD
    the log does not mention was not judged and is kept; only a CCD whose state is not
    acceptable is dropped. Reading the log alone (DAXA's way) would drop the central CCD.

    Args:
        log_file_path: the emanom log.
        ccds: the exposure's imaging CCDs.
        acceptable_states: the states to keep, from G, I, B, O, U.

    Returns:
        The CCDs to keep, ascending.

    Raises:
        EmanomParseError: as :func:`parse_emanom_out`.
    """
    wanted = _check_states(acceptable_states)
    states = parse_emanom_states(log_file_path)
    return sorted(c for c in set(ccds) if states.get(c) is None or states[c] in wanted)


def emanom_supported(sas_version: SasVersion | str | tuple[int, ...]) -> bool:
    """True when this SAS has emanom (SAS >= 19); older SAS skips the step with a warning.

    Args:
        sas_version: a SasVersion, a version string (either form SAS prints), or a tuple.

    Raises:
        SasVersionError: a string holds no version.
    """
    if isinstance(sas_version, str):
        sas_version = parse_sas_version(sas_version)
    if isinstance(sas_version, tuple):
        padded = tuple(sas_version) + (0,) * (3 - len(sas_version))
        return padded[:3] >= EMANOM_MIN_SAS
    if isinstance(sas_version, SasVersion):
        return sas_version >= EMANOM_MIN_SAS
    raise SasVersionError(f"not a SAS version: {sas_version!r}")
