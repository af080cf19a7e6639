"""Reading odfingest summary files (``*SUM.SAS``) and the ODF's own ``*SUM.ASC``.

The summary says which instruments were active, which sub-exposures they took, in which
mode, through which filter and with which CCDs; unit selection (:mod:`daxa_xmm.odf.selection`)
decides from it what to process. Its format, as odfingest 3.30 (SAS 14) writes it:

- comment lines start with ``//``; a bare ``//`` separates records, and some records (the
  PROPOSAL and DATA QUALITY records copied from SUM.ASC) follow each other with no separator;
- a record starts with a header line: ``OBSERVATION``, ``FILES``, ``CONFIGURATION [words]``,
  ``INSTRUMENT``, ``EXPOSURE``, ``PROPOSAL``, ``DATA QUALITY`` (and a one-line ``PATH dir``);
- value lines read ``VALUE / Comment`` (``003 / Exposure Identifier [also S003]``), except
  in CONFIGURATION records, which hold ``KEY = VALUE / Comment`` or ``KEY = VALUE // Comment``
  lines (``FILTER_WHEEL = FILTER A // ...``: values may hold spaces);
- lines may carry trailing spaces or be padded to 80 characters; the file ends with an empty
  line.

Reading the file and cutting it into records is :mod:`daxa_xmm.odf.summary_records`; this
module gives the records their meaning.

Unlike DAXA's parser, every record is read (DAXA dropped the last line of the last
instrument section), and every problem is a :class:`~daxa_xmm.errors.SummaryParseError`
naming the file and line: never an IndexError or KeyError, so one bad file fails one
observation with a clear reason instead of hanging a pool.

Checks that catch truncated or edited files: the FILES count, each instrument's stated
number of exposures, each CONFIGURATION record's stated number of parameters (true for all
47 records of the real sample), the fields an EXPOSURE record must have, and the closing
``Scheduled flag`` line of each DATA QUALITY record. A file cut exactly between two records
can still read as complete; nothing in the format says otherwise.
"""

from __future__ import annotations

__all__ = [
    "read_observation_record",
    "read_odf_summary",
    "parse_odf_sum",
]

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from daxa_xmm.errors import SummaryParseError
from daxa_xmm.odf.models import ExposureInfo, InstrumentInfo, ObservationRecord, OdfSummary
from daxa_xmm.odf.summary_records import _KV, MAX_SUMMARY_BYTES, SummaryRecord, _int, _key_value, _read_text, _split_records, _time, _value, _yes_no

logger = logging.getLogger(__name__)

_EXP_ID = re.compile(r"^\d{3}$")
_ALSO = re.compile(r"\[also\s+([SUX]\d{3})\]")
_INST = re.compile(r"^[A-Z][A-Z0-9]$")
_DATA_MODE = re.compile(r"^DATA_MODE_(\d{1,3})$")
_BY = re.compile(r"By:\s*odfingest\(odfingest-([\w.]+)\)\s*\[([^\]]+)\]")


def _by_comment(path: Path, rec: SummaryRecord, wanted: dict[str, str]) -> dict[str, tuple[int, str]]:
    """Values of ``rec`` keyed by the field whose comment contains the given text."""
    found: dict[str, tuple[int, str]] = {}
    for number, text in rec.lines:
        value, comment = _value(path, number, text)
        for name, needle in wanted.items():
            if name not in found and needle.lower() in comment.lower():
                found[name] = (number, value)
                break
    missing = [wanted[n] for n in wanted if n not in found]
    if missing:
        last = rec.lines[-1][0] if rec.lines else rec.line
        raise SummaryParseError(path, f"{rec.kind} record (line {rec.line}) has no {', '.join(missing)} line", last)
    return found


def _observation(path: Path, rec: SummaryRecord, obs_id: str | None, versions: tuple[str | None, str | None]) -> ObservationRecord:
    f = _by_comment(
        path,
        rec,
        {"obsid": "Observation Identifier", "rev": "Revolution Identifier", "start": "Start Time", "end": "End Time"},
    )
    obs_line, obsid = f["obsid"]
    if not re.fullmatch(r"[0-9]{10}", obsid):
        raise SummaryParseError(path, f"ObsID must be 10 digits, got {obsid!r}", obs_line)
    if obs_id is not None and obsid != obs_id:
        raise SummaryParseError(path, f"summary is for ObsID {obsid}, expected {obs_id}", obs_line)
    rev_line, rev = f["rev"]
    if not re.fullmatch(r"\d{4}", rev):
        raise SummaryParseError(path, f"revolution must be 4 digits, got {rev!r}", rev_line)
    start = _time(path, *f["start"])
    end = _time(path, *f["end"])
    try:
        return ObservationRecord(
            obsid=obsid, revolution=rev, start=start, end=end, sas_version=versions[0], odfingest_version=versions[1]
        )
    except ValidationError as exc:  # pragma: no cover - every field was checked above
        raise SummaryParseError(path, f"bad OBSERVATION record: {exc}", rec.line) from None


def _only_record(path: Path, records: list[SummaryRecord], kind: str) -> SummaryRecord:
    found = [r for r in records if r.kind == kind]
    if not found:
        raise SummaryParseError(path, f"no {kind} record")
    if len(found) > 1:
        raise SummaryParseError(path, f"second {kind} record", found[1].line)
    return found[0]


def read_observation_record(path: str | Path, obs_id: str | None = None) -> ObservationRecord:
    """Read just the OBSERVATION record of an odfingest SUM.SAS or an ODF's SUM.ASC.

    Both files write it as ``VALUE / Comment`` lines (odfingest copies it from SUM.ASC), so
    the observation date is known without network and before odfingest has run: cifbuild's
    ``observationdate`` comes from here. Fields are found by their comments
    (``Observation Identifier``, ``Revolution Identifier``, ``... Start Time``, ``... End
    Time``), which makes the reader indifferent to their order and padding.

    Args:
        path: the SUM.SAS or SUM.ASC file.
        obs_id: when given, the ObsID the file must belong to.

    Raises:
        SummaryParseError: missing file, no OBSERVATION record, a missing or malformed field,
            or an ObsID other than ``obs_id``.
    """
    p = Path(path)
    records, banner = _split_records(p, _read_text(p), strict=False)
    return _observation(p, _only_record(p, records, "OBSERVATION"), obs_id, _versions(p, records, banner))


def _config_values(path: Path, rec: SummaryRecord) -> dict[str, tuple[int, str]]:
    """The KEY = VALUE pairs of a CONFIGURATION record, checked against its stated count."""
    if not rec.lines:
        raise SummaryParseError(path, "CONFIGURATION record without its parameter count", rec.line)
    number, text = rec.lines[0]
    count = _int(path, number, _value(path, number, text)[0], "number of configuration parameters")
    values: dict[str, tuple[int, str]] = {}
    for number, text in rec.lines[1:]:
        key, value = _key_value(path, number, text)
        if key in values:
            raise SummaryParseError(path, f"{key} appears twice in one CONFIGURATION record", number)
        values[key] = (number, value)
    if len(values) != count:
        last = rec.lines[-1][0]
        raise SummaryParseError(
            path, f"CONFIGURATION record (line {rec.line}) states {count} parameters but holds {len(values)}", last
        )
    return values


def _versions(path: Path, records: list[SummaryRecord], banner: list[str]) -> tuple[str | None, str | None]:
    """(SAS manifest, odfingest version) from the global CONFIGURATION record or the banner."""
    sas = odfingest = None
    for line in banner:
        m = _BY.search(line)
        if m:
            odfingest, sas = m[1], m[2]
    for rec in records:
        if rec.kind == "CONFIGURATION":
            for number, text in rec.lines:
                if text.startswith("SAS_MANIFEST"):
                    sas = _key_value(path, number, text)[1] or sas
                elif text.startswith("ODFINGEST_VERSION"):
                    odfingest = _key_value(path, number, text)[1] or odfingest
            break
    return sas, odfingest


class _Exposure:
    """An EXPOSURE record being assembled (its CONFIGURATION record may follow)."""

    def __init__(self, path: Path, rec: SummaryRecord, inst: str) -> None:
        if not rec.lines:
            raise SummaryParseError(path, "EXPOSURE record is empty", rec.line)
        number, text = rec.lines[0]
        value, comment = _value(path, number, text)
        if "Exposure Identifier" not in comment or not _EXP_ID.match(value):
            raise SummaryParseError(path, f"expected 'NNN / Exposure Identifier [also S003]', got {text[:60]!r}", number)
        for n, t in rec.lines:
            if _KV.match(t.strip()):  # a CONFIGURATION header was lost: refuse, do not guess
                raise SummaryParseError(path, f"'KEY = VALUE' line in an EXPOSURE record: {t[:60]!r}", n)
        f = _by_comment(path, rec, {"scheduled": "scheduled exposure", "type": "Exposure Type"})
        self.line = rec.line
        self.scheduled = _yes_no(path, *f["scheduled"], "'Is this a scheduled exposure?'")
        self.type = f["type"][1]
        if not self.type:
            raise SummaryParseError(path, "empty Exposure Type", f["type"][0])
        also = _ALSO.search(comment)
        self.exp_id = also[1] if also else ("S" if self.scheduled else "U") + value
        if also and also[1][1:] != value:
            raise SummaryParseError(path, f"exposure number {value} disagrees with [also {also[1]}]", number)
        if self.exp_id[0] in "SU" and (self.exp_id[0] == "S") != self.scheduled:
            logger.warning("%s line %d: %s is marked scheduled=%s; the id wins", path, number, self.exp_id, self.scheduled)
        self.scheduled = self.exp_id[0] == "S"
        times: dict[str, datetime] = {}
        for number, text in rec.lines:
            v, c = _value(path, number, text)
            for name in ("Actual Start Time", "Actual End Time", "Scheduled Start Time", "Scheduled End Time"):
                if c == name:
                    times[name] = _time(path, number, v)
        self.start = times.get("Actual Start Time", times.get("Scheduled Start Time"))
        self.end = times.get("Actual End Time", times.get("Scheduled End Time"))
        self.inst = inst
        self.config: dict[str, tuple[int, str]] | None = None
        self.ccd_lines: set[int] = set()

    def build(self, path: Path) -> ExposureInfo:
        cfg = self.config or {}
        ccd_modes = {}
        for key, (number, value) in cfg.items():
            m = _DATA_MODE.match(key)
            if m and number in self.ccd_lines:
                ccd_modes[int(m[1])] = value
        try:
            return ExposureInfo(
                exp_id=self.exp_id,
                scheduled=self.scheduled,
                type=self.type,
                mode=cfg.get("MODE", (0, "UNDEFINED"))[1] or "UNDEFINED",
                filter=cfg.get("FILTER", (0, "UNDEFINED"))[1] or "UNDEFINED",
                ccd_modes=dict(sorted(ccd_modes.items())),
                start=self.start,
                end=self.end,
            )
        except ValidationError as exc:  # pragma: no cover - fields checked above
            raise SummaryParseError(path, f"bad EXPOSURE record: {exc}", self.line) from None


#: Summaries parsed in this process, by path and a digest of the file's bytes: the
#: plan-first check reads each observation's twice (is it whole? which units?), a run more
#: often. Keyed by content, not by size and mtime: a file rewritten in place within one
#: mtime tick, at the same size, is still parsed again.
_PARSED: OrderedDict[tuple[str, bytes], OdfSummary] = OrderedDict()
_PARSED_MAX = 256
_PARSED_LOCK = threading.Lock()


def _content_key(path: Path) -> tuple[str, bytes] | None:
    """The cache key of ``path`` as it is now (None when it cannot be read as a summary:
    the parser then says why)."""
    try:
        if path.stat().st_size > MAX_SUMMARY_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return os.fspath(path), hashlib.blake2b(data, digest_size=20).digest()


def read_odf_summary(sum_path: str | Path, obs_id: str | None = None) -> OdfSummary:
    """Read an odfingest summary file into an :class:`~daxa_xmm.odf.models.OdfSummary`.

    A file read before in this process, with the same bytes now (a digest of them is
    compared), is not parsed again: its summary (a frozen model) is given again. A file
    that fails to parse is parsed again at each call, so its error is always the file's own.

    Args:
        sum_path: the ``{rev}_{obsid}_SCX00000SUM.SAS`` file odfingest wrote.
        obs_id: when given, the ObsID the file must belong to (a mismatch is an error, as a
            summary copied into the wrong folder would otherwise process the wrong data).

    Returns:
        The observation record (with the SAS manifest and odfingest version), the FILES
        list, and every instrument with every exposure, in file order. An exposure with no
        FILTER line has filter ``UNDEFINED``; one with no CONFIGURATION record has mode
        ``UNDEFINED``. ``ccd_modes`` holds the ``DATA_MODE_n`` lines of CCDs (``... / Data
        mode for CCD n``): EPIC and RGS, not OM's windows.

    Raises:
        SummaryParseError: for any malformed, truncated or inconsistent file, naming the
            file and line.
    """
    path = Path(sum_path)
    key = _content_key(path)
    if key is None:
        return _parse_odf_summary(path, obs_id)  # raises the reader's own error
    with _PARSED_LOCK:  # a run reads summaries from several threads
        summary = _PARSED.get(key)
        if summary is not None:
            _PARSED.move_to_end(key)
    if summary is None:
        try:
            summary = _parse_odf_summary(path, None)
        except SummaryParseError:
            return _parse_odf_summary(path, obs_id)  # the error it raises for this ObsID
        if _content_key(path) == key:  # not kept if the file changed while it was parsed
            with _PARSED_LOCK:
                _PARSED[key] = summary
                if len(_PARSED) > _PARSED_MAX:
                    _PARSED.popitem(last=False)
    if obs_id is not None and summary.observation.obsid != obs_id:
        return _parse_odf_summary(path, obs_id)  # raises: the summary is for another ObsID
    return summary


def _parse_odf_summary(path: Path, obs_id: str | None) -> OdfSummary:
    """:func:`read_odf_summary` without its cache."""
    records, banner = _split_records(path, _read_text(path))
    versions = _versions(path, records, banner)
    obs_rec = _only_record(path, records, "OBSERVATION")
    observation = _observation(path, obs_rec, obs_id, versions)
    if len(obs_rec.lines) != 4:  # odfingest writes exactly four; more means a lost header
        raise SummaryParseError(path, f"OBSERVATION record has {len(obs_rec.lines)} lines, expected 4", obs_rec.line)
    _only_record(path, records, "FILES")

    files: list[str] = []
    instruments: dict[str, dict] = {}
    current_inst: dict | None = None
    current_exp: _Exposure | None = None
    seen_global_config = False

    for rec in records:
        if rec.kind == "FILES":
            if not rec.lines:
                raise SummaryParseError(path, "FILES record without its count", rec.line)
            number, text = rec.lines[0]
            count = _int(path, number, _value(path, number, text)[0], "number of files")
            files = [_value(path, n, t)[0] for n, t in rec.lines[1:]]
            if len(files) != count or not all(files):
                raise SummaryParseError(path, f"FILES record states {count} files but lists {len(files)}", rec.lines[-1][0])
        elif rec.kind == "INSTRUMENT":
            if len(rec.lines) != 3:
                raise SummaryParseError(path, f"INSTRUMENT record needs 3 lines, has {len(rec.lines)}", rec.line)
            (n0, name), (n1, active), (n2, num) = ((n, _value(path, n, t)[0]) for n, t in rec.lines)
            if not _INST.match(name):
                raise SummaryParseError(path, f"not an instrument id: {name!r}", n0)
            if name in instruments:
                raise SummaryParseError(path, f"second INSTRUMENT record for {name}", rec.line)
            current_inst = {
                "name": name,
                "active": _yes_no(path, n1, active, "'Is this instrument active?'"),
                "num_exp": _int(path, n2, num, "number of exposures"),
                "line": rec.line,
                "exposures": {},
            }
            instruments[name] = current_inst
            current_exp = None
        elif rec.kind == "EXPOSURE":
            if current_inst is None:
                raise SummaryParseError(path, "EXPOSURE record before any INSTRUMENT record", rec.line)
            current_exp = _Exposure(path, rec, current_inst["name"])
            if current_exp.exp_id in current_inst["exposures"]:
                raise SummaryParseError(path, f"{current_inst['name']} {current_exp.exp_id} appears twice", rec.line)
            current_inst["exposures"][current_exp.exp_id] = current_exp
        elif rec.kind == "CONFIGURATION":
            values = _config_values(path, rec)
            if current_exp is not None:
                if current_exp.config is not None:  # pragma: no cover - reset below makes this unreachable
                    raise SummaryParseError(path, "second CONFIGURATION record for one exposure", rec.line)
                current_exp.config = values
                # DAXA reads CCD modes from the '... / Data mode for CCD n' lines only (OM's
                # windows are not CCDs)
                current_exp.ccd_lines = {n for n, t in rec.lines if "Data mode for CCD" in t}
                current_exp = None  # the next CONFIGURATION cannot belong to it
            elif current_inst is None and not seen_global_config:
                seen_global_config = True
            else:
                raise SummaryParseError(path, "CONFIGURATION record that follows no EXPOSURE record", rec.line)
        elif rec.kind == "DATA QUALITY":
            if not rec.lines or "Scheduled flag" not in rec.lines[-1][1]:
                last = rec.lines[-1][0] if rec.lines else rec.line
                raise SummaryParseError(path, "DATA QUALITY record does not end with its 'Scheduled flag' line", last)
            current_exp = None
        else:  # OBSERVATION (read above), PATH, PROPOSAL
            current_exp = None

    if not instruments:
        raise SummaryParseError(path, "no INSTRUMENT record: not an odfingest summary (a SUM.ASC?)")
    built: dict[str, InstrumentInfo] = {}
    for name, inst in instruments.items():
        exposures = {k: e.build(path) for k, e in inst["exposures"].items()}
        if len(exposures) != inst["num_exp"]:
            raise SummaryParseError(
                path,
                f"instrument {name} states {inst['num_exp']} exposures but {len(exposures)} EXPOSURE records follow",
                inst["line"],
            )
        built[name] = InstrumentInfo(name=name, active=inst["active"], num_exp=inst["num_exp"], exposures=exposures)
    return OdfSummary(path=str(path), observation=observation, instruments=built, files=tuple(files))


def parse_odf_sum(sum_path: str | Path, obs_id: str | None = None) -> dict:
    """DAXA's ``parse_odf_sum``: the summary as DAXA's nested dict.

    ``{inst: {'active', 'num_exp', 'exposures': {'S003': {'scheduled', 'type', 'mode',
    'filter', 'ccd_modes'}}}}``. Differences from DAXA 0.3.7: every instrument has
    ``num_exp`` and ``exposures`` even when inactive, and errors are
    :class:`~daxa_xmm.errors.SummaryParseError` (a ValueError). As in DAXA, an exposure
    without a ``FILTER = `` line has ``filter`` None, and ``ccd_modes`` holds the
    ``... / Data mode for CCD n`` lines only.

    Args:
        sum_path: the odfingest summary file.
        obs_id: when given, the ObsID the file must belong to.
    """
    return read_odf_summary(sum_path, obs_id).to_daxa_dict()
