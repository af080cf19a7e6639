"""A tiny ODF for tests of the stand-in (headers only, in the format daxa_xmm.standin.synth writes)."""

from __future__ import annotations

__all__ = ["write_tiny_odf", "TINY_OBSID", "TINY_REV"]

from pathlib import Path

TINY_OBSID = "0123456789"
TINY_REV = "0828"


def _fits(path: Path, cards: dict[str, object], gz: bool = False) -> None:
    from astropy.io import fits

    hdu = fits.PrimaryHDU()
    for k, v in cards.items():
        hdu.header[k] = v
    hdu.writeto(str(path) + (".gz" if gz else ""), overwrite=True)


def write_tiny_odf(folder: Path, *, gz_ccd_files: bool = False) -> Path:
    """An ODF with PN S003 (12 imaging CCDs), PN U002 (diagnostic), M1 S001, M2 S002, R1 S004.

    CCD files are gzipped when ``gz_ccd_files`` (the stand-in odfingest refuses them: the
    pipeline unpacks them first, daxa_xmm.odf.unpack).
    """
    folder.mkdir(parents=True, exist_ok=True)
    o, r = TINY_OBSID, TINY_REV
    (folder / f"{r}_{o}_SCX00000SUM.ASC").write_text(
        "OBSERVATION\n"
        f"{o} / Observation Identifier\n{r} / Revolution Identifier\n"
        "2004-06-17T10:38:28.000 / Observation Start Time\n2004-06-17T14:47:01.000 / Observation End Time\n"
        "CONFIGURATION\n2\nODF_VERSION = 003 / Qcheck reset ODF version\nPRIME_INSTR = E3 / Prime Instrument\n"
    )
    exposures = [
        ("PN", "S", "003", "EPN", "PrimeFullWindow", "Thin1", "2004-06-17T11:30:44", "2004-06-17T14:38:43",
         {c: ("IME", "Imaging") for c in range(1, 13)}),
        ("PN", "U", "002", "EPN", "Diagnostic", None, "2004-06-17T14:42:12", "2004-06-17T14:42:13",
         {1: ("DLI", "DiscardedLinesData")}),
        ("M1", "S", "001", "EMOS1", "PrimeFullWindow", "Medium", "2004-06-17T10:39:08", "2004-06-17T14:43:39",
         {c: ("IME", "Imaging") for c in range(1, 8)}),
        ("M2", "S", "002", "EMOS2", "PrimeFullWindow", "Thin1", "2004-06-17T10:39:08", "2004-06-17T14:43:39",
         {c: ("IME", "Imaging") for c in range(1, 8)}),
        ("R1", "S", "004", "RGS1", "HighEventRateWithSES", None, "2004-06-17T10:38:28", "2004-06-17T14:47:01",
         {c: ("SPE", "Spectroscopy") for c in (1, 2, 3)}),
    ]
    for code, sched, num, instrume, mode, filt, start, end, ccds in exposures:
        cards: dict[str, object] = {
            "INSTRUME": instrume, "OBS_ID": o, "EXPIDSTR": f"{sched}{num}",
            "EXP_ID": f"{o}{code}{sched}{num}", "EXPTYPE": "SCIENCE", "SCHEDULD": sched == "S",
            "SUBMODE": mode, "DATE-OBS": start, "DATE-END": end,
        }
        if filt:
            cards["FILTER"] = filt
        _fits(folder / f"{r}_{o}_{code}{sched}{num}00AUX.FIT", cards)
        for ccd, (typ, datamode) in ccds.items():
            _fits(folder / f"{r}_{o}_{code}{sched}{num}{ccd:02d}{typ}.FIT",
                  {"CCDID": ccd, "DATAMODE": datamode}, gz=gz_ccd_files)
    for name in ("ATS", "TCS"):
        _fits(folder / f"{r}_{o}_SCX00000{name}.FIT", {"OBS_ID": o})
    return folder
