"""Read an ODF folder the way odfingest does: SUM.ASC records, exposures and their CCD files.

Accepted input: a folder of ``{rev}_{obsid}_...`` files, each ``.FIT`` or ``.FIT.gz`` (their
headers read without astropy, :mod:`daxa_xmm.odf.fitsread`), with the archive's
``{rev}_{obsid}_SCX00000SUM.ASC``. Tar files are not unpacked (the archive's tar must be
extracted first, as with real SAS).
"""

from __future__ import annotations

__all__ = ["OdfExposure", "Odf", "read_odf", "find_summary_sas"]

import re
from dataclasses import dataclass, field
from pathlib import Path

from daxa_xmm.odf.fitsread import primary_header
from daxa_xmm.standin.common import SasExit

#: ``{rev}_{obsid}_{inst}{S|U|X}{nnn}{cc}{TYPE}.FIT`` (cc = 00 for the aux file).
_ODF_FILE = re.compile(
    r"^(?P<rev>\d{4})_(?P<obsid>\d{10})_(?P<inst>M1|M2|PN|R1|R2|OM|SC|RM)(?P<sched>[SUX])"
    r"(?P<num>\d{3})(?P<cc>\d{2})(?P<type>[A-Z0-9]{3})\.(?P<ext>FIT|ASC|SAS)(?P<gz>\.gz)?$"
)
#: Top-level records of SUM.ASC (and of the summary file).
_RECORDS = ("OBSERVATION", "CONFIGURATION", "PROPOSAL", "DATA QUALITY")
#: Instruments in the order odfingest writes them.
INSTRUMENT_ORDER = ("M1", "M2", "R1", "R2", "PN", "OM")


@dataclass
class OdfExposure:
    """One exposure of one instrument, from its AUX file and its per-CCD files."""

    inst: str
    sched: str
    num: str
    header: dict[str, object]
    ccds: dict[int, str] = field(default_factory=dict)  # CCD (or OM window) -> DATAMODE

    @property
    def expid(self) -> str:
        """``S003``/``U002``."""
        return f"{self.sched}{self.num}"


@dataclass
class Odf:
    """What odfingest learns from an ODF folder."""

    path: Path
    rev: str
    obsid: str
    files: list[str]
    records: list[tuple[str, list[str]]]  # (record name, raw lines incl. the name line)
    exposures: list[OdfExposure]

    def record(self, name: str) -> list[str] | None:
        """The raw lines of the first record called ``name``."""
        for rec, lines in self.records:
            if rec == name:
                return lines
        return None

    def observation(self) -> dict[str, str]:
        """``obsid``, ``rev``, ``start``, ``end`` from the OBSERVATION record."""
        lines = self.record("OBSERVATION") or []
        values = [ln.split("/", 1)[0].strip() for ln in lines[1:5]]
        keys = ("obsid", "rev", "start", "end")
        return dict(zip(keys, values, strict=False))  # a short record: the keys it has


def _split_records(text: str) -> list[tuple[str, list[str]]]:
    """SUM.ASC as (record, lines): a line that is exactly a record name starts one."""
    out: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        key = raw.strip()
        if key in _RECORDS:
            out.append((key, [raw]))
        elif out and not raw.startswith("//"):
            out[-1][1].append(raw)
    return out


def _header(path: Path) -> dict[str, object]:
    """The primary header of a (possibly gzipped) ODF FITS file, as a plain dict."""
    try:
        return primary_header(path)
    except (OSError, ValueError) as exc:
        raise SasExit("datasetCouldNotBeRead", f"The ODF constituent '{path}' could not be read: {exc}") from exc


def read_odf(odfdir: Path) -> Odf:
    """Scan ``odfdir``; a SAS error when it is missing or holds no SUM.ASC.

    Raises:
        SasExit: ``OdfDirNotFound``, ``NoSummaryFile``.
    """
    if not odfdir.is_dir():
        raise SasExit("OdfDirNotFound", f"The ODF directory '{odfdir}' does not exist")
    names = sorted(p.name for p in odfdir.iterdir() if _ODF_FILE.match(p.name))
    asc = [n for n in names if re.match(r"^\d{4}_\d{10}_SCX00000SUM\.ASC$", n)]
    if not asc:
        raise SasExit("NoSummaryFile", f"No ODF summary file (*SCX00000SUM.ASC) found in '{odfdir}'")
    m = _ODF_FILE.match(asc[0])
    assert m is not None
    rev, obsid = m["rev"], m["obsid"]
    records = _split_records((odfdir / asc[0]).read_text(errors="replace"))
    exposures: dict[tuple[str, str, str], OdfExposure] = {}
    for name in names:
        m = _ODF_FILE.match(name)
        assert m is not None
        if m["obsid"] != obsid or m["sched"] == "X" or m["ext"] != "FIT":
            continue
        key = (m["inst"], m["sched"], m["num"])
        if m["type"] == "AUX":
            exposures.setdefault(key, OdfExposure(m["inst"], m["sched"], m["num"], {}))
            exposures[key].header = _header(odfdir / name)
    for name in names:
        m = _ODF_FILE.match(name)
        assert m is not None
        key = (m["inst"], m["sched"], m["num"])
        if key in exposures and m["type"] != "AUX" and m["ext"] == "FIT":
            hdr = _header(odfdir / name)
            ccd = int(str(hdr.get("CCDID", m["cc"])))
            exposures[key].ccds.setdefault(ccd, str(hdr.get("DATAMODE", "Imaging")).strip())
    ordered = sorted(
        exposures.values(),
        key=lambda e: (INSTRUMENT_ORDER.index(e.inst) if e.inst in INSTRUMENT_ORDER else 99, e.sched, e.num),
    )
    return Odf(path=odfdir, rev=rev, obsid=obsid, files=names, records=records, exposures=ordered)


def find_summary_sas(odf: str, cwd: Path) -> Path:
    """The summary file named by an ``odf=``/``SAS_ODF`` value (the .SAS file or its folder)."""
    p = Path(odf)
    if not p.is_absolute():
        p = cwd / p
    if p.is_dir():
        hits = sorted(p.glob("*SUM.SAS"))
        if not hits:
            raise SasExit("NoSummaryFile", f"No ODF summary file (*SUM.SAS) in '{p}'; run odfingest first")
        return hits[0]
    if not p.is_file():
        raise SasExit("OdfNotFound", f"The ODF '{odf}' does not exist")
    return p
