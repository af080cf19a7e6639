"""SAS version numbers, parsed from both forms SAS prints.

``sasversion`` prints ``SAS release: 22.1.0-a8f2c2afa-20250304``; older builds tag
themselves ``xmmsas_20211130_0941-20.0.0``. DAXA once read the first form as version
20250303; here the major.minor.patch always comes from the dotted triple.
"""

from __future__ import annotations

import builtins

__all__ = ["SasVersion", "parse_sas_version"]

import re
from functools import total_ordering

from daxa_xmm.errors import SasVersionError

_RELEASE = re.compile(
    r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{1,2})(?![\d]|\.\d)(?:-([0-9a-f]+))?(?:-(\d{8}))?(?![0-9a-f])"
)
_XMMSAS = re.compile(r"xmmsas_(\d{8})_(\d{4})-(\d{1,2})\.(\d{1,2})\.(\d{1,2})(?!\d)")
#: The line ``sasversion`` prints its release on; other lines (paths, hosts) may hold numbers too.
_RELEASE_LINE = re.compile(r"SAS release:\s*(.*)")
_DATE = re.compile(r"(19|20)\d{6}")


@total_ordering
class SasVersion:
    """A SAS release, comparable with another SasVersion or a ``(major, minor, patch)`` tuple.

    Attributes:
        major, minor, patch: the release numbers.
        build: the build date ``YYYYMMDD`` when the string carried one, else None.
        raw: the text it was parsed from.
    """

    __slots__ = ("major", "minor", "patch", "build", "raw")

    def __init__(self, major: int, minor: int, patch: int, build: str | None = None, raw: str = "") -> None:
        self.major, self.minor, self.patch = int(major), int(minor), int(patch)
        self.build = build
        self.raw = raw or f"{major}.{minor}.{patch}"

    @property
    def tuple(self) -> builtins.tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self, other: object) -> builtins.tuple[int, int, int]:
        if isinstance(other, SasVersion):
            return other.tuple
        if isinstance(other, tuple):
            padded = tuple(other) + (0,) * (3 - len(other))
            return padded[:3]
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        key = self._key(other)
        return NotImplemented if key is NotImplemented else self.tuple == key

    def __lt__(self, other: object) -> bool:
        key = self._key(other)
        return NotImplemented if key is NotImplemented else self.tuple < key

    def __hash__(self) -> int:
        return hash(self.tuple)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __repr__(self) -> str:
        return f"SasVersion({self.major}, {self.minor}, {self.patch}, build={self.build!r})"


def _parse_one(text: str) -> SasVersion | None:
    m = _XMMSAS.search(text)
    if m:
        return SasVersion(int(m[3]), int(m[4]), int(m[5]), build=m[1], raw=m[0])
    m = _RELEASE.search(text)
    if m:
        build = m[5]
        if build is None and m[4] and _DATE.fullmatch(m[4]):
            build = m[4]  # ``21.0.0-20230101``: no hash, the date alone
        return SasVersion(int(m[1]), int(m[2]), int(m[3]), build=build, raw=m[0])
    return None


def parse_sas_version(text: str) -> SasVersion:
    """Parse ``22.1.0-a8f2c2afa-20250304``, ``xmmsas_20211130_0941-20.0.0`` or ``21.0.0``.

    Accepts the whole ``sasversion`` output too: its ``SAS release:`` line is read first,
    because the rest of the output lists paths (``SAS_DIR = /opt/xmmsas_...``) that may name
    another build. Without such a line the first recognisable version wins, the
    ``xmmsas_`` form first. The release numbers always come from the dotted triple, never
    from the build date (DAXA once read ``22.1.0-...-20250303`` as version 20250303).

    Raises:
        SasVersionError: when no version can be found in ``text``.
    """
    if not isinstance(text, str):
        raise SasVersionError(f"not a SAS version string: {text!r}")
    for m in _RELEASE_LINE.finditer(text):
        found = _parse_one(m[1])
        if found is not None:
            return found
    found = _parse_one(text)
    if found is not None:
        return found
    raise SasVersionError(f"no SAS version found in {text[:200]!r}")
