"""Fast mode of the SAS stand-in: right output names, placeholder contents, no astropy.

Benchmarks of the orchestration (overhead per call, memory and database size at hundreds
or thousands of observations, makespan against its lower bound) need SAS calls that cost
next to nothing, or the stand-in's own work hides what is measured: a normal stand-in call
imports astropy and numpy (~0.4 s of CPU) and writes real event lists. With
``DAXA_STANDIN_FAST=1`` every task except ``sasversion``, ``odfingest`` (whose summary
file the flow parses) and ``cifbuild`` (whose calibration index the flow reads, once per
observation, to decide whether it is current) writes its outputs under their real names as
tiny header-only FITS files carrying the keywords later tasks derive names from (INSTRUME,
EXPIDSTR, OBS_ID) and those xga reads before DAXA's images (TELESCOP, DATE-OBS), read back
without astropy. Argument checking, faults, durations and the call log are
unchanged, and evselect still needs the GTI files its expression names (looked up from its
cwd, as a relative name is), so a fast call still costs one Python start-up (~30 ms).

Products made this way are placeholders, not science: only the benchmarks use this mode.
Unset (the default), the stand-in behaves exactly as before.
"""

from __future__ import annotations

__all__ = ["ENV", "enabled", "run_fast", "header_cards", "placeholder_fits"]

import os
from collections.abc import Mapping
from pathlib import Path

from daxa_xmm.odf.fitsread import primary_header
from daxa_xmm.standin.common import SasExit, TaskContext, is_yes, switched_on
from daxa_xmm.standin.fitswrite import Column, bintable_hdu, card, header_block

#: The environment variable that turns fast mode on (``1``, ``yes``, ``true``).
ENV = "DAXA_STANDIN_FAST"

_PREFIX = {"EPN": "pn", "EMOS1": "mos1", "EMOS2": "mos2"}


def enabled(env: Mapping[str, str]) -> bool:
    """Whether ``DAXA_STANDIN_FAST`` asks for fast mode."""
    return env.get(ENV, "").strip().lower() in {"1", "yes", "y", "true"}


#: Every table the products' checks look for (daxa_xmm.sas.product_checks), with one row: a
#: placeholder passes the same checks as a real product, its data-quality checks
#: (daxa_xmm.sas.quality: an event, one second of good time) included, so fast mode exercises
#: the same paths.
_TABLES = (("EVENTS", ("TIME", "PI")), ("STDGTI", ("START", "STOP")), ("ATTHK", ("TIME",)),
           ("CALINDEX", ("ISSUE",)))
#: The primary image's celestial WCS, as evselect writes it (the sample image), and its one
#: pixel's value of 1 (a count, a second of exposure): what the images' data-quality check asks.
_WCS = (("CTYPE1", "RA---TAN"), ("CRPIX1", 1.0), ("CRVAL1", 149.59475), ("CDELT1", -0.00120833333333333),
        ("CTYPE2", "DEC--TAN"), ("CRPIX2", 1.0), ("CRVAL2", -11.0876388888889), ("CDELT2", 0.00120833333333333))


def placeholder_fits(path: Path, cards: Mapping[str, str]) -> None:
    """Write a small FITS file with string ``cards``, atomically (fresh mtime): a 1x1 primary
    image with a WCS and the one-row tables of :data:`_TABLES`."""
    lines = [*card("SIMPLE", True), *card("BITPIX", 8), *card("NAXIS", 2), *card("NAXIS1", 1), *card("NAXIS2", 1),
             *card("EXTEND", True), *card("CREATOR", "daxa_xmm.standin fast mode (placeholder)"),
             *card("TELESCOP", "XMM")]  # as in every XMM product (the sample event lists)
    for key, wcs in _WCS:
        lines += card(key, wcs)
    for key, value in cards.items():
        if key not in ("CREATOR", "TELESCOP", *(k for k, _ in _WCS)):  # (a placeholder's cards carry these)
            lines += card(key, str(value))
    tables = (bintable_hdu(name, [Column(c, "D", [float(i)]) for i, c in enumerate(columns)]) for name, columns in _TABLES)
    data = header_block(lines) + b"\1" + b"\0" * 2879 + b"".join(tables)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def header_cards(path: Path) -> dict[str, str]:
    """String keywords of a FITS primary header, read without astropy."""
    try:
        header = primary_header(path)
    except (OSError, ValueError) as exc:
        raise SasExit("datasetCouldNotBeRead", f"The dataset '{path}' could not be read: {exc}") from exc
    return {key: value.strip() for key, value in header.items() if isinstance(value, str)}


def _stem(ctx: TaskContext) -> tuple[str, dict[str, str]]:
    """(``pnS003``, header cards) of the call's input list (espfilt's ``eventset`` before SAS 20)."""
    from daxa_xmm.standin.tasks_clean import _old

    name = "eventset" if ctx.task == "espfilt" and _old(ctx) else "eventfile"
    cards = header_cards(ctx.require_file(name, ctx.param(name)))
    inst = cards.get("INSTRUME", "")
    if inst not in _PREFIX:
        raise SasExit("wrongInstrument", f"unsupported instrument '{inst}' (EPIC PN or MOS event list expected)")
    return f"{_PREFIX[inst]}{cards.get('EXPIDSTR', '')}", cards


def _dates(exps: Mapping[str, Mapping[str, object]], key: str) -> dict[str, str]:
    """The exposure's DATE-OBS and DATE-END, as every real event list carries them (the sample
    lists); xga reads DATE-OBS before it makes DAXA's images."""
    exp = exps.get(key, {})
    return {card: str(exp[field]) for card, field in (("DATE-OBS", "start"), ("DATE-END", "end")) if exp.get(field)}


def _chains(task: str, ctx: TaskContext) -> None:
    from daxa_xmm.standin import tasks_chains as tc

    obs, exps = tc.read_summary_exposures(tc._summary(ctx))
    obsid = obs["obsid"]
    att = ctx.cwd / f"P{obsid}OBX000ATTTSR0000.FIT"
    if task == "epchain":  # the same documented file behaviour as tasks_chains.epchain
        expid = tc._pn_expid(ctx)
        raw = ctx.cwd / "rawevents.fast"
        if not is_yes(ctx.param("runatthkgen")) and not att.is_file():
            raise SasExit("noAttitude", f"runatthkgen=N but {att.name} is not in the working directory")
        if not is_yes(ctx.param("runepframes")) and not raw.is_file():
            raise SasExit("noRawEvents", "runepframes=N but the raw intermediates are not in the working directory")
        placeholder_fits(tc.epchain_output(ctx), {"INSTRUME": "EPN", "EXPIDSTR": expid, "OBS_ID": obsid,
                                                  **_dates(exps, f"PN{expid}")})
        if ctx.param("keepintermediate").lower() in ("raw", "all"):
            raw.write_text("raw")
        if is_yes(ctx.param("runatthkgen")):
            placeholder_fits(att, {"OBS_ID": obsid})
        return
    elif task == "emchain":
        for inst, expid in tc._mos_units(ctx):
            for key in [f"{inst}{expid}"] if expid else [k for k in exps if k.startswith(inst)]:
                placeholder_fits(ctx.cwd / f"P{obsid}{key}MIEVLI0000.FIT",
                                 {"INSTRUME": "EMOS1" if inst == "M1" else "EMOS2", "EXPIDSTR": key[2:], "OBS_ID": obsid,
                                  **_dates(exps, key)})
    else:  # rgsproc
        first, last = tc._stage(ctx, "entrystage"), tc._stage(ctx, "finalstage")
        for unit in tc._rgs_units(ctx, exps):
            cards = {"INSTRUME": "RGS1" if unit.startswith("R1") else "RGS2", "EXPIDSTR": unit[2:], "OBS_ID": obsid}
            merged, evenli = ctx.cwd / f"P{obsid}{unit}merged0000.FIT", ctx.cwd / f"P{obsid}{unit}EVENLI0000.FIT"
            if first == 1:
                placeholder_fits(merged, cards)
            elif not merged.exists():
                if not evenli.exists():
                    raise SasExit("datasetCouldNotBeRead", f"neither {merged.name} nor {evenli.name} is here")
                placeholder_fits(merged, cards)
            if first <= 2 <= last:
                placeholder_fits(merged, {**cards, "ANGLES": "T"})  # modified in place
            if first <= 3 <= last:
                placeholder_fits(evenli, cards)
        return
    placeholder_fits(ctx.cwd / f"P{obsid}OBX000ATTTSR0000.FIT", {"OBS_ID": obsid})


def run_fast(task: str, ctx: TaskContext) -> int:
    """Write ``task``'s outputs as placeholders; returns the exit status (0).

    Raises:
        SasExit: as the real task would for a missing input or a bad parameter value.
    """
    if task == "cifbuild":
        placeholder_fits(ctx.path(ctx.param("calindexset")), {"CONTENT": "CIF"})
    elif task in ("epchain", "emchain", "rgsproc"):
        _chains(task, ctx)
    elif task == "emanom":
        stem, _ = _stem(ctx)
        from daxa_xmm.standin.tasks_clean import EMANOM_CHIPS

        lines = [f"CCD: {c}  Status: G  Hardness ratio: 0.500  Corner rate: 0.0100" for c in EMANOM_CHIPS]
        tmp = ctx.cwd / f".{stem}-anom.log.tmp{os.getpid()}"
        tmp.write_text("emanom (fast stand-in)\n" + "\n".join(lines) + "\n")
        os.replace(tmp, ctx.cwd / f"{stem}-anom.log")
        if is_yes(ctx.param("writekeys")):  # keywords into its input, rewritten in place
            events = ctx.path(ctx.param("eventfile"))
            placeholder_fits(events, {**header_cards(events), **{f"ANOMFL{c}": "G" for c in EMANOM_CHIPS}})
    elif task == "espfilt":
        from daxa_xmm.standin.tasks_clean import _band, _old, espfilt_names

        stem, cards = _stem(ctx)
        names = espfilt_names(stem, *_band(ctx), _old(ctx) or is_yes(ctx.param("withlongnames")))
        if _old(ctx) or not is_yes(ctx.param("withoot")):
            names.pop("allevcoot")
        if ctx.param("method") != "histogram":
            names.pop("hist")
        for name in names.values():
            placeholder_fits(ctx.cwd / name, cards)
    elif task == "evselect":
        table = ctx.param("table").split(":", 1)[0].split("[", 1)[0]
        cards = header_cards(ctx.require_file("table", table))
        _require_gti_files(ctx)
        for flag, name in (("withfilteredset", "filteredset"), ("withimageset", "imageset"),
                           ("withspectrumset", "spectrumset"), ("withrateset", "rateset")):
            if switched_on(ctx.args, ctx.param(flag), flag, name, *(("xcolumn",) if name == "imageset" else ())):
                placeholder_fits(ctx.path(ctx.param(name)), cards)
    elif task == "merge":
        cards = header_cards(ctx.require_file("set1", ctx.param("set1")))
        ctx.require_file("set2", ctx.param("set2"))
        if ctx.path(ctx.param("outset")).exists():
            raise SasExit("outsetExists", f"the output dataset {ctx.param('outset')} already exists")
        placeholder_fits(ctx.path(ctx.param("outset")), cards)
    elif task == "eexpmap":
        cards = header_cards(ctx.require_file("imageset", ctx.param("imageset")))
        placeholder_fits(ctx.path(ctx.param("expimageset")), cards)
    else:
        raise SasExit("TaskNotAvailable", f"fast mode has no implementation of {task}")
    return 0


def _require_gti_files(ctx: TaskContext) -> None:
    """Every ``gti(file,...)`` of the expression must be a file, a relative name looked up
    from the call's cwd: evselect cannot filter on a GTI it cannot open, and fast mode does
    not read the table, so it checks at least that much (the full stand-in reads it)."""
    from daxa_xmm.sas.filters import gti_files

    if ctx.param("filtertype").lower() != "expression":
        return
    for spec in gti_files(ctx.param("expression")):
        name = spec.strip("'\"").split("[", 1)[0]
        if not ctx.path(name).is_file():
            raise SasExit("GtiTable", f"cannot read GTI table {spec!r}: no such file from {ctx.cwd}")
