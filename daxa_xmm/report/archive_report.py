"""The archive report: what ran, what failed and why, from the manifests.

Built from the per-observation manifests (the record users trust), never from in-memory
state, so a report after a resumed or partly failed run tells the whole truth. Written as
``report.json`` for programs and ``report.html`` for people, atomically, with the science
summary of every exposure (:mod:`daxa_xmm.report.science`) in both and in ``exposures.csv``.

Data-quality outcomes (a fully flared exposure, an empty cleaned list, an image without WCS,
an exposure map without exposure: daxa_xmm.sas.quality) are no failures: they leave an
observation ``ok``, and are counted and listed apart (``data_quality``, by check, and each
outcome under its observation), so that what SAS could not do and what the data do not hold
are never mixed up.
"""

from __future__ import annotations

__all__ = ["ObservationSummary", "ArchiveReport", "build_report", "write_report", "observation_rows", "status_from_rows",
           "count_statuses", "summary_markdown", "write_archive_report", "write_report_unless_disk_full"]

import html
import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from daxa_xmm.atomic import atomic_write_text
from daxa_xmm.errors import is_disk_full
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.pipeline.manifest import load_manifest
from daxa_xmm.pipeline.snapshot import snapshot
from daxa_xmm.report.science import CSV_NAME, ExposureSummary, exposures_html, observation_exposures, write_exposures_csv

log = logging.getLogger(__name__)


class ObservationSummary(BaseModel):
    """One observation's line in the report, plus its step rows."""

    obsid: str
    status: str = Field(description="ok | partial | failed | interrupted")
    message: str = ""
    rows: list[dict[str, Any]] = Field(default_factory=list)
    pictures: list[str] = Field(default_factory=list, description="quick-look PNGs, relative to the report")
    products: list[str] = Field(default_factory=list)
    data_quality: list[dict[str, Any]] = Field(
        default_factory=list, description="its data-quality outcomes (not failures): unit, step, checks, message")
    exposures: list[ExposureSummary] = Field(
        default_factory=list, description="science summary of each EPIC sub-exposure (daxa_xmm.report.science)")


class ArchiveReport(BaseModel):
    """Everything the archive-level report shows."""

    created: datetime
    archive: str
    out: str
    sas_version: str
    observations: list[ObservationSummary]
    counts: dict[str, int]
    data_quality: dict[str, int] = Field(
        default_factory=dict, description="data-quality outcomes of the archive by check (flare_gti, cleaned_events, "
                                          "image, exposure_map): not failures, counted apart from the observations' statuses")


def observation_rows(layout: ArchiveLayout, obsid: str) -> list[dict[str, Any]]:
    """One row per (unit, step): status, duration, SAS errors and warnings, message."""
    manifest = load_manifest(layout.manifest(obsid), obsid)
    rows = []
    for rec in sorted(manifest.records.values(), key=lambda r: (r.started or datetime.min.replace(tzinfo=timezone.utc), r.unit, r.step)):
        rows.append(
            {
                "unit": rec.unit,
                "step": rec.step,
                "status": rec.status,
                "duration_s": rec.duration_s,
                "attempts": rec.attempts,
                "errors": "; ".join(f"{e['task']}: {e['name']}: {e['message']}" for e in rec.errors),
                "warnings": "; ".join(f"{w['task']}: {w['name']}" for w in rec.warnings),
                "message": rec.message,
                "products": [str(p) for p in rec.products],
                "quality": list(rec.quality),
            }
        )
    return rows


def status_from_rows(rows: list[dict[str, Any]]) -> str:
    """An observation's status as its manifest records it (for observations this run did
    not process): ok, partial, failed, interrupted or running."""
    statuses = {r["status"] for r in rows} - {"data_quality"}  # not a failure
    if not statuses or statuses <= {"ok", "skipped"}:
        return "ok"
    for state in ("running", "interrupted"):
        if state in statuses:
            return state
    return "partial" if "ok" in statuses else "failed"


def build_report(
    layout: ArchiveLayout, outcomes: list[dict[str, Any]], sas_version: str, pictures: dict[str, list[str]] | None = None
) -> ArchiveReport:
    """Every observation with a manifest under the output folder, whichever run wrote it.

    This run's outcomes say what happened now; an observation this run left alone (a run on
    a subset of ObsIDs) or found busy (another run holds it) is reported as its manifest
    records it, so two runs at once, or a run on part of the archive, never drop an
    observation or call a finished one failed.
    """
    pictures = pictures or {}
    by_obsid = {o["obsid"]: o for o in outcomes}
    if layout.out_root.is_dir():
        for folder in sorted(layout.out_root.iterdir()):
            if folder.name not in by_obsid and (folder / "manifest.json").is_file():
                by_obsid[folder.name] = {"obsid": folder.name, "from_manifest": "not processed by this run"}
    observations = []
    for obsid, outcome in sorted(by_obsid.items()):
        seen = snapshot(layout)  # this observation's folders resolved once, not a dozen times
        try:
            rows = observation_rows(seen, obsid) if seen.manifest(obsid).exists() else []
        except Exception:  # noqa: BLE001 - a manifest this version cannot read: report without rows
            rows = []
        status, message = outcome.get("status", ""), outcome.get("message", "")
        if outcome.get("busy"):
            outcome = {**outcome, "from_manifest": message}
        if "from_manifest" in outcome:
            status = status_from_rows(rows) if rows else "running"
            message = f"{outcome['from_manifest']}; as its manifest records it"
        # an unusable product is listed with its data-quality outcome, not among the products
        products = sorted({p for r in rows if r["status"] != "data_quality" for p in r["products"]})
        observations.append(
            ObservationSummary(
                obsid=obsid,
                status=status,
                message=message,
                rows=rows,
                pictures=pictures.get(obsid, []),
                products=products,
                data_quality=[{k: r.get(k) for k in ("unit", "step", "quality", "message", "products")}
                              for r in rows if r["status"] == "data_quality"],
                exposures=observation_exposures(seen, obsid),
            )
        )
    counts = count_statuses(o.status for o in observations)
    return ArchiveReport(
        created=datetime.now(timezone.utc),
        archive=str(layout.raw_root),
        out=str(layout.out_root),
        sas_version=sas_version,
        observations=observations,
        counts=counts,
        data_quality=count_statuses(kind for o in observations for q in o.data_quality for kind in (q["quality"] or ["?"])),
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:90%}
.ok{color:#176f2c}.failed,.timeout,.upstream_failed{color:#b00020}.partial,.skipped{color:#a05a00}.data_quality{color:#3c4fa0}
img{max-width:360px;margin:.3em;border:1px solid #ddd}
"""


def _html(report: ArchiveReport) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>daxa-xmm report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>daxa-xmm processing report</h1>",
        f"<p>Archive <code>{e(report.archive)}</code> &rarr; <code>{e(report.out)}</code><br>",
        f"SAS {e(report.sas_version)} &middot; {e(report.created.isoformat(timespec='seconds'))} &middot; ",
        ", ".join(f"<span class='{e(k)}'>{v} {e(k)}</span>" for k, v in sorted(report.counts.items())),
        _quality_line(report),
        f"</p><p>Every exposure's numbers, one row each: <a href='{CSV_NAME}'>{CSV_NAME}</a></p>",
        "<table><tr><th>ObsID</th><th>status</th><th>message</th></tr>",
    ]
    for o in report.observations:
        parts.append(
            f"<tr><td><a href='#{e(o.obsid)}'>{e(o.obsid)}</a></td><td class='{e(o.status)}'>{e(o.status)}</td>"
            f"<td>{e(o.message)}</td></tr>"
        )
    parts.append("</table>")
    parts += _quality_table(report)
    for o in report.observations:
        parts.append(f"<h2 id='{e(o.obsid)}'>{e(o.obsid)} <small class='{e(o.status)}'>{e(o.status)}</small></h2>")
        if o.message:
            parts.append(f"<p>{e(o.message)}</p>")
        for pic in o.pictures:
            parts.append(f"<a href='{e(pic)}'><img src='{e(pic)}' alt='{e(Path(pic).name)}'></a>")
        parts.append(exposures_html(o.exposures))
        heads = ("unit", "step", "status", "s", "tries", "SAS errors", "warnings", "message")
        parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>")
        for r in o.rows:
            dur = "" if r["duration_s"] is None else f"{r['duration_s']:.1f}"
            parts.append(
                f"<tr><td>{e(r['unit'])}</td><td>{e(r['step'])}</td><td class='{e(r['status'])}'>{e(r['status'])}</td>"
                f"<td>{dur}</td><td>{r['attempts']}</td><td>{e(r['errors'])}</td><td>{e(r['warnings'])}</td>"
                f"<td>{e(r['message'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _quality_line(report: ArchiveReport) -> str:
    """The header's count of data-quality outcomes, by check, apart from the statuses."""
    if not report.data_quality:
        return ""
    total = sum(report.data_quality.values())
    kinds = ", ".join(f"{v} {html.escape(k)}" for k, v in sorted(report.data_quality.items()))
    return f"<br><span class='data_quality'>{total} data-quality outcome(s), not failures</span> ({kinds})"


def _quality_table(report: ArchiveReport) -> list[str]:
    """Every data-quality outcome of the archive, in one table of its own."""
    found = [(o.obsid, q) for o in report.observations for q in o.data_quality]
    if not found:
        return []
    e = html.escape
    parts = ["<h2>Data-quality outcomes</h2><p>Products SAS made that hold nothing usable: not failures; what "
             "they would feed was not run.</p><table><tr><th>ObsID</th><th>unit</th><th>step</th><th>check</th>"
             "<th>why</th></tr>"]
    parts += [f"<tr><td><a href='#{e(obsid)}'>{e(obsid)}</a></td><td>{e(q['unit'])}</td><td>{e(q['step'])}</td>"
              f"<td class='data_quality'>{e(', '.join(q['quality'] or []))}</td><td>{e(q['message'])}</td></tr>"
              for obsid, q in found]
    return [*parts, "</table>"]


def write_report(report: ArchiveReport, out_root: Path) -> tuple[Path, Path]:
    """Write ``report.json``, ``report.html`` and ``exposures.csv`` into ``out_root`` atomically."""
    out_root.mkdir(parents=True, exist_ok=True)
    # pydantic's own serialiser: the same JSON as json.dumps(indent=2) of model_dump, five times
    # faster (the standard library's indenting encoder is pure Python: 0.3 s per 1,000
    # observations), and an infinite or NaN number becomes null, not JSON-invalid Infinity
    js = atomic_write_text(out_root / "report.json", report.model_dump_json(indent=2) + "\n")
    page = atomic_write_text(out_root / "report.html", _html(report))
    write_exposures_csv(out_root / CSV_NAME, ((o.obsid, o.exposures) for o in report.observations))
    return js, page


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    """``{status: how many}``."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def summary_markdown(title: str, observations: Iterable[tuple[str, str, str]], footer: str = "") -> str:
    """A markdown table of (ObsID, status, message) under ``title`` with the status counts."""
    observations = list(observations)
    counts = count_statuses(status for _, status, _ in observations)
    lines = [f"# {title}", "", ", ".join(f"**{v}** {k}" for k, v in sorted(counts.items())), "",
             "| ObsID | status | message |", "|---|---|---|"]
    lines += [f"| {obsid} | {status} | {message.replace('|', '/')} |" for obsid, status, message in observations]
    return "\n".join(lines + ([f"\n{footer}"] if footer else []))


def markdown_summary(report: ArchiveReport) -> str:
    """The archive summary as markdown, for a Prefect artifact."""
    quality = ", ".join(f"{v} {k}" for k, v in sorted(report.data_quality.items()))
    return summary_markdown(f"daxa-xmm: {len(report.observations)} observations",
                            ((o.obsid, o.status, o.message) for o in report.observations),
                            (f"Data-quality outcomes (not failures): {quality}\n\n" if quality else "")
                            + f"Report: `{Path(report.out) / 'report.html'}`; every exposure's numbers: "
                            f"`{Path(report.out) / CSV_NAME}`")


def write_archive_report(layout: ArchiveLayout, outcomes: list[dict[str, Any]], sas_version: str) -> tuple[ArchiveReport, Path]:
    """Quick-look pictures, then report.json and report.html; returns the report and its page."""
    from daxa_xmm.report.quicklook import observation_pictures

    pictures: dict[str, list[str]] = {}
    for o in outcomes:
        try:
            pics = observation_pictures(snapshot(layout), o["obsid"])
        except Exception as exc:  # noqa: BLE001 - pictures are a nicety; never fail the run for them
            log.warning("quick-look pictures of %s: %s", o["obsid"], exc)
            pics = []
        pictures[o["obsid"]] = [str(p.relative_to(layout.out_root)) for p in pics]
    report = build_report(layout, outcomes, sas_version, pictures)
    _, page = write_report(report, layout.out_root)
    return report, page


def write_report_unless_disk_full(layout: ArchiveLayout, outcomes: list[dict[str, Any]],
                                  sas_version: str) -> tuple[ArchiveReport | None, str]:
    """:func:`write_archive_report`, but a full disk is said, not raised: a run's outcome must
    not be hidden by its report (the manifests still say what was done). Returns the report
    and its page, or None and why it was not written."""
    try:
        report, page = write_archive_report(layout, outcomes, sas_version)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        log.error("the report could not be written: %s", exc)
        return None, f"not written ({exc.strerror}); run the same command again once space is freed"
    return report, str(page)
