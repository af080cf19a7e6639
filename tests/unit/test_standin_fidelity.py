"""The stand-in does what SAS's documentation (and DAXA 0.3.7's working command lines) say
each call does: one test per documented behaviour, its source named in the test.

Sources are listed in docs/SAS_FIDELITY.md; pages are those of
``xmm-tools.cosmos.esa.int/external/sas/current/doc/<task>/``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from astropy.io import fits

from daxa_xmm.standin.install import install_standin
from daxa_xmm.standin.testing import TINY_OBSID, write_tiny_odf

OBS = TINY_OBSID
PN = ["odfaccess=odf", "exposure=003", "schedule=S", "ccds=1,2,3,4,5,6,7,8,9,10,11,12"]
OOT = [*PN, "withoutoftime=Y", "keepintermediate=raw", "runbackground=N"]
NORMAL = [*PN, "runatthkgen=N", "runepframes=N", "runbadpixfind=N", "runbadpix=N"]
RGS = ["withinstexpids=true", "instexpids=R1S004"]
ATT = f"P{OBS}OBX000ATTTSR0000.FIT"


class Sas:
    """The installed stand-in; ``run`` calls a task in a folder as the runner does."""

    def __init__(self, root: Path, version: str = "22.1.0-a8f2c2afa-20250304") -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SAS_", "DAXA_STANDIN"))}
        self.env.update(install_standin(root / "sas", sas_version=version))

    def run(self, cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        cwd.mkdir(parents=True, exist_ok=True)
        return subprocess.run(list(argv), cwd=cwd, env={**self.env, **env}, capture_output=True, text=True,
                              timeout=60)


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """cifbuild and odfingest run once; SAS_ODF points at the summary, as the pipeline sets it."""
    root = tmp_path_factory.mktemp("fidelity")
    sas = Sas(root)
    odf = write_tiny_odf(root / "odf")
    setup = root / "setup"
    r = sas.run(setup, "cifbuild", "calindexset=ccf.cif", "withobservationdate=yes", "observationdate=2004-06-17")
    assert r.returncode == 0, r.stderr
    env = {"SAS_CCF": str(setup / "ccf.cif")}
    r = sas.run(setup, "odfingest", f"odfdir={odf}", f"outdir={setup}", "withodfdir=yes", **env)
    assert r.returncode == 0, r.stderr
    env["SAS_ODF"] = str(next(setup.glob("*SUM.SAS")))
    return {"sas": sas, "env": env, "root": root, "odf": odf}


def _run(obs: dict[str, object], cwd: Path, *argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return obs["sas"].run(cwd, *argv, **{**obs["env"], **extra})  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ epchain
def test_epchain_oot_run_writes_oot_list_and_attitude_and_keeps_raw(obs: dict[str, object], tmp_path: Path) -> None:
    # epchain output files (node13): withoutoftime=Y writes ...OOEVLI0000.FIT instead of the
    # normal list; atthkgen writes ...OBX000ATTTSR0000.FIT (node4: "At the beginning of the
    # epchain script the task atthkgen creates an attitude history file"); epframes makes
    # rawevents##.dat, kept with keepintermediate=raw
    r = _run(obs, tmp_path, "epchain", *OOT)
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(tmp_path))
    assert {f"P{OBS}PNS003OOEVLI0000.FIT", ATT} <= names
    assert f"P{OBS}PNS003PIEVLI0000.FIT" not in names
    assert "rawevents01.dat" in names


def test_epchain_normal_run_reuses_the_oot_folder_and_writes_no_attitude(obs: dict[str, object], tmp_path: Path) -> None:
    assert _run(obs, tmp_path, "epchain", *OOT).returncode == 0
    before = (tmp_path / ATT).stat().st_mtime_ns
    os.utime(tmp_path / ATT, ns=(1, 1))  # any rewrite would change this
    r = _run(obs, tmp_path, "epchain", *NORMAL)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / f"P{OBS}PNS003PIEVLI0000.FIT").is_file()
    assert (tmp_path / ATT).stat().st_mtime_ns == 1 != before  # runatthkgen=N: not rewritten


@pytest.mark.parametrize("keep", [None, "none"])
def test_epchain_normal_run_fails_without_the_oot_intermediates(obs: dict[str, object], tmp_path: Path,
                                                               keep: str | None) -> None:
    # keepintermediate's default deletes every intermediate (epchain parameters, node11)
    if keep is not None:
        oot = [a for a in OOT if not a.startswith("keepintermediate")] + [f"keepintermediate={keep}"]
        assert _run(obs, tmp_path, "epchain", *oot).returncode == 0
    r = _run(obs, tmp_path, "epchain", *NORMAL)
    assert r.returncode == 1
    assert "(noAttitude)" in r.stderr or "(noRawEvents)" in r.stderr
    assert not (tmp_path / f"P{OBS}PNS003PIEVLI0000.FIT").exists()


def test_epchain_reads_the_summary_through_sas_odf(obs: dict[str, object], tmp_path: Path) -> None:
    # OAL (oal/node6): "It is also possible to assign directly the name of an ODF summary
    # file to SAS_ODF"; no odf= needed
    r = _run(obs, tmp_path, "epchain", *OOT)
    assert r.returncode == 0 and "odf=$SAS_ODF" in r.stdout, r.stderr


# ------------------------------------------------------------------------------ rgsproc
def test_rgsproc_stages_write_merged_then_modify_it_then_write_evenli(obs: dict[str, object], tmp_path: Path) -> None:
    # rgsproc algorithm (node30): stage 1 evlistcomb create(merged); stage 2 rgsangles
    # modify(merged); stage 3 rgsfilter create(evenli). DAXA 0.3.7: P{obsid}R1S004merged0000.FIT
    merged, evenli = tmp_path / f"P{OBS}R1S004merged0000.FIT", tmp_path / f"P{OBS}R1S004EVENLI0000.FIT"
    assert _run(obs, tmp_path, "rgsproc", "entrystage=1:events", "finalstage=1:events", *RGS).returncode == 0
    assert merged.is_file() and not evenli.exists()
    files = set(os.listdir(tmp_path))
    os.utime(merged, ns=(1, 1))
    assert _run(obs, tmp_path, "rgsproc", "entrystage=2:angles", "finalstage=2:angles", *RGS).returncode == 0
    assert set(os.listdir(tmp_path)) == files  # no new file
    assert merged.stat().st_mtime_ns != 1
    assert "BETA_CORR" in fits.getheader(merged, "EVENTS").values()
    assert _run(obs, tmp_path, "rgsproc", "entrystage=3:filter", "finalstage=3:filter", *RGS).returncode == 0
    assert evenli.is_file()


def test_rgsproc_later_stage_clones_evenli_or_fails(obs: dict[str, object], tmp_path: Path) -> None:
    # node30: "if (!exists(merged) && exists(evenli)) clone: read(evenli) create(merged)"
    r = _run(obs, tmp_path / "empty", "rgsproc", "entrystage=3:filter", "finalstage=3:filter", *RGS)
    assert r.returncode == 1 and "merged0000.FIT" in r.stderr
    work = tmp_path / "full"
    assert _run(obs, work, "rgsproc", "entrystage=1:events", "finalstage=3:filter", *RGS).returncode == 0
    (work / f"P{OBS}R1S004merged0000.FIT").unlink()
    assert _run(obs, work, "rgsproc", "entrystage=3:filter", "finalstage=3:filter", *RGS).returncode == 0
    assert (work / f"P{OBS}R1S004merged0000.FIT").is_file()


# ------------------------------------------------------------------------------ emchain
def test_emchain_writes_the_mos_list_and_the_attitude(obs: dict[str, object], tmp_path: Path) -> None:
    # emchain output files (node14): POOOOOOOOOODDUEEEMIEVLI0000.FIT and the tracking history
    # file ...OBX000ATTTSR0000.FIT generated by atthkgen; odf defaults to SAS_ODF (node11)
    r = _run(obs, tmp_path, "emchain", "instruments=M1", "exposures=S001", "addtaglenoise=no", "makeflaregti=no")
    assert r.returncode == 0, r.stderr
    assert {f"P{OBS}M1S001MIEVLI0000.FIT", ATT} <= set(os.listdir(tmp_path))


# ------------------------------------------------------------------------------ emanom
def test_emanom_judges_chips_2_to_7_and_writes_keys_into_its_input(obs: dict[str, object], tmp_path: Path) -> None:
    # emanom algorithm (node8): "Loop through chips 2-7 (since chip 1 has no corner data)";
    # ESAS cookbook (node89): writekeys=yes (default) writes ANOMHRn/ANOMHEn/ANOMFLn into the
    # input event file's header
    assert _run(obs, tmp_path, "emchain", "instruments=M1", "exposures=S001").returncode == 0
    evt = tmp_path / f"P{OBS}M1S001MIEVLI0000.FIT"
    r = _run(obs, tmp_path, "emanom", f"eventfile={evt}", "keepcorner=no")
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "mos1S001-anom.log").read_text()
    assert "CCD: 1 " not in log and "CCD: 2 " in log
    hdr = fits.getheader(evt)
    assert "ANOMFL2" in hdr and "ANOMFL1" not in hdr
    evt2 = tmp_path / "copy.FIT"
    evt2.write_bytes(evt.read_bytes())
    with fits.open(evt2, mode="update") as hdul:
        for k in [k for k in hdul[0].header if k.startswith("ANOM")]:
            del hdul[0].header[k]
    assert _run(obs, tmp_path, "emanom", f"eventfile={evt2}", "writekeys=no", "keepcorner=no").returncode == 0
    assert not any(k.startswith("ANOM") for k in fits.getheader(evt2))


# ------------------------------------------------------------------------------ espfilt
@pytest.fixture(scope="module")
def pn_lists(obs: dict[str, object]) -> tuple[Path, Path]:
    work = obs["root"] / "pn"  # type: ignore[operator]
    assert _run(obs, work, "epchain", *OOT).returncode == 0
    assert _run(obs, work, "epchain", *NORMAL).returncode == 0
    return work / f"P{OBS}PNS003PIEVLI0000.FIT", work / f"P{OBS}PNS003OOEVLI0000.FIT"


def test_espfilt_ratio_method_makes_no_qdp(obs: dict[str, object], pn_lists: tuple[Path, Path], tmp_path: Path) -> None:
    # espfilt description (node3): "A QDP plot of the lightcurves are created if one is using
    # the histogram method"
    evt, oot = pn_lists
    r = _run(obs, tmp_path, "espfilt", f"eventfile={evt}", "withoot=yes", f"ootfile={oot}", "method=ratio")
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(tmp_path))
    assert {"pnS003-gti.fits", "pnS003-allevc.fits", "pnS003-allevcoot.fits"} <= names
    assert not any(n.endswith(".qdp") for n in names)


def test_espfilt_sas20_long_names(pn_lists: tuple[Path, Path], tmp_path: Path) -> None:
    # the real SAS 20.0.0 log (xmm-samples): mos1S001-gti-2500-8500.fits, -allevc-2500-8500;
    # DAXA 0.3.7 expects PN's OOT list as pnS003-allevcoot.fits
    sas = Sas(tmp_path, version="xmmsas_20211130_0941-20.0.0")
    evt, oot = pn_lists
    r = sas.run(tmp_path / "w", "espfilt", f"eventfile={evt}", "withoot=yes", f"ootfile={oot}", "withlongnames=yes",
                "keepinterfiles=no", SAS_CCF=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert {"pnS003-gti-2500-8500.fits", "pnS003-allevc-2500-8500.fits", "pnS003-hist-2500-8500.qdp",
            "pnS003-allevcoot.fits"} <= set(os.listdir(tmp_path / "w"))


def test_espfilt_before_sas20_takes_daxas_form_and_both_methods(pn_lists: tuple[Path, Path], tmp_path: Path) -> None:
    # SAS 15 and 18 espfilt pages describe the histogram-fit and the ratio methods; DAXA
    # 0.3.7 runs old SAS with eventset= and the method knobs only
    sas = Sas(tmp_path, version="xmmsas_20190531_1155-18.0.0")
    evt, _ = pn_lists
    r = sas.run(tmp_path / "h", "espfilt", f"eventset={evt}", "method=histogram", "withsmoothing=yes", "smooth=51")
    assert r.returncode == 0, r.stderr
    assert {"pnS003-gti-2500-8500.fits", "pnS003-allevc-2500-8500.fits", "pnS003-hist-2500-8500.qdp"} <= set(
        os.listdir(tmp_path / "h"))
    r = sas.run(tmp_path / "n", "espfilt", f"eventfile={evt}")
    assert r.returncode == 1 and "(UnknownParameter)" in r.stderr


# ------------------------------------------------------------------------------ merge
def test_merge_refuses_an_existing_outset_and_an_input_as_outset(obs: dict[str, object], pn_lists: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    # DAXA 0.3.7 names every merge link anew because merge will not overwrite an existing
    # outset; ESAS cookbook (node80): "you are not allowed to have the output file name being
    # the same as one of the input file names"
    evt, _ = pn_lists
    a, b = tmp_path / "a.fits", tmp_path / "b.fits"
    a.write_bytes(evt.read_bytes())
    b.write_bytes(evt.read_bytes())
    assert _run(obs, tmp_path, "merge", "set1=a.fits", "set2=b.fits", "outset=out.fits").returncode == 0
    r = _run(obs, tmp_path, "merge", "set1=a.fits", "set2=b.fits", "outset=out.fits")
    assert r.returncode == 1 and "(outsetExists)" in r.stderr
    r = _run(obs, tmp_path, "merge", "set1=a.fits", "set2=b.fits", "outset=a.fits")
    assert r.returncode == 1 and "(outsetIsInput)" in r.stderr


# ------------------------------------------------------------------------------ odfingest
def test_odfingest_has_its_documented_parameters(obs: dict[str, object], tmp_path: Path) -> None:
    # odfingest parameters (node14): odfdir, withodfdir ("Otherwise use SAS_ODF"), outdir,
    # summaryfile, usecanonicalname, writepath, findinstrumentmodes, usehousekeeping, oalcheck
    odf = obs["odf"]
    for invented in ("withoutdir=yes", "emsomode=yes", "findinstrumentmode=yes"):
        r = _run(obs, tmp_path, "odfingest", f"odfdir={odf}", "withodfdir=yes", invented)
        assert r.returncode == 1 and "(UnknownParameter)" in r.stderr
    r = _run(obs, tmp_path / "viaenv", "odfingest", "withodfdir=no", "oalcheck=no", "usehousekeeping=yes",
             SAS_ODF=str(odf))
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "viaenv").glob("*_SCX00000SUM.SAS"))  # outdir defaults to '.'


def test_odfingest_refuses_gzipped_constituents(obs: dict[str, object], tmp_path: Path) -> None:
    # odfingest's pages are silent on gzip (only emchain's allows it): the strict reading,
    # so the pipeline must unpack them (daxa_xmm.odf.unpack), as DAXA 0.3.7 does
    odf = write_tiny_odf(tmp_path / "odf", gz_ccd_files=True)
    r = _run(obs, tmp_path / "w", "odfingest", f"odfdir={odf}", "withodfdir=yes")
    assert r.returncode == 1 and "(gzippedConstituent)" in r.stderr


@pytest.mark.parametrize("version", ["22.1.0-a8f2c2afa-20250304", "xmmsas_20211130_0941-20.0.0"])
def test_sas_version_ends_with_the_tag_in_brackets(tmp_path: Path, version: str) -> None:
    """DAXA 0.3.7 ``_backend_check.py:15-60`` (find_sas, before any XMM step) runs ``sas
    --version`` and reads the version from the text between the last ``[`` and the end:
    ``xmmsas_...-20.0.0`` (SAS 20) or ``22.1.0-...`` (SAS 21 and later)."""
    r = Sas(tmp_path, version).run(tmp_path / "cwd", "sas", "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip("]\n").split("[")[-1] == version
    refused = Sas(tmp_path, version).run(tmp_path / "cwd", "sas", "epchain")
    assert refused.returncode != 0 and "** sas: error" in refused.stderr


def test_lcurve_version_names_heasoft_after_the_word_version(tmp_path: Path) -> None:
    """DAXA 0.3.7 ``_backend_check.py:121-141`` (find_lcurve, before emchain) reads HEASoft's
    version as the word after ``Version `` in ``lcurve --version``."""
    r = Sas(tmp_path).run(tmp_path / "cwd", "lcurve", "--version")
    assert r.stdout.split("Version ")[-1].split(" ")[0] == "1.0"


@pytest.mark.parametrize("fast", [False, True])
def test_evselect_a_given_filteredset_implies_withfilteredset(obs: dict[str, object], pn_lists: tuple[Path, Path],
                                                             tmp_path: Path, fast: bool) -> None:
    """SAS Users Guide, "Running SAS": a control flag (``with...``) is set implicitly when a
    child parameter is given, unless the flag is given as no; DAXA 0.3.7's cleaned lists
    (``assemble.py``, cleaned_evt_lists) give ``filteredset=`` without ``withfilteredset``."""
    evt, _ = pn_lists
    mode = {"DAXA_STANDIN_FAST": "1"} if fast else {}
    implied = _run(obs, tmp_path / "implied", "evselect", f"table={evt}", "filteredset=clean.fits",
                   "expression=PI > 200", **mode)
    assert implied.returncode == 0, implied.stderr
    assert (tmp_path / "implied" / "clean.fits").is_file()
    refused = _run(obs, tmp_path / "off", "evselect", f"table={evt}", "filteredset=clean.fits", "withfilteredset=no",
                   "expression=PI > 200", **mode)
    assert refused.returncode == 0, refused.stderr
    assert not (tmp_path / "off" / "clean.fits").exists()


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("child", ["imageset=img.fits", "xcolumn=X"])
def test_evselect_a_given_image_parameter_implies_withimageset(obs: dict[str, object], pn_lists: tuple[Path, Path],
                                                              tmp_path: Path, fast: bool, child: str) -> None:
    """SAS Users Guide, "Running SAS": "evselect --xcolumn=RAWX implies --withimageset=yes
    unless -withimageset=no is explicitly set"; ``imageset=`` is its other child (default
    ``image.fits``)."""
    evt, _ = pn_lists
    mode = {"DAXA_STANDIN_FAST": "1"} if fast else {}
    made = tmp_path / "implied" / ("img.fits" if child.startswith("imageset") else "image.fits")
    binning = ["imagebinning=binSize", "ximagebinsize=87", "yimagebinsize=87"]
    implied = _run(obs, made.parent, "evselect", f"table={evt}", child, *binning, **mode)
    assert implied.returncode == 0, implied.stderr
    assert made.is_file()
    refused = _run(obs, tmp_path / "off", "evselect", f"table={evt}", child, *binning, "withimageset=no", **mode)
    assert refused.returncode == 0, refused.stderr
    assert not any((tmp_path / "off").glob("*.fits"))


@pytest.mark.parametrize("fast", [False, True])
def test_evselect_opens_a_relative_gti_file_from_its_working_directory(obs: dict[str, object], pn_lists: tuple[Path, Path],
                                                                       tmp_path: Path, fast: bool) -> None:
    """A relative file name is opened from the process's working directory (POSIX
    ``openat(AT_FDCWD, ...)``; SAS documents outputs going to the cwd, Doc epchain/node4, and
    nothing else for inputs): the pipeline names espfilt's GTI relative to evselect's cwd, so
    the products folder's path, which may hold a space, stays out of the expression (issue 34.4)."""
    evt, _ = pn_lists
    mode = {"DAXA_STANDIN_FAST": "1"} if fast else {}
    cleaning, work = tmp_path / "cleaning", tmp_path / "work" / "unit"
    assert _run(obs, cleaning, "espfilt", f"eventfile={evt}").returncode == 0
    args = [f"table={evt}", "filteredset=clean.fits", "withfilteredset=yes", "updateexposure=yes", "filterexposure=yes",
            "expression=PI > 200 && gti(../../cleaning/pnS003-gti.fits,TIME)"]
    found = _run(obs, work, "evselect", *args, **mode)
    assert found.returncode == 0, found.stderr
    assert (work / "clean.fits").is_file()
    elsewhere = _run(obs, tmp_path / "elsewhere", "evselect", *args, **mode)  # the same name from another cwd
    assert elsewhere.returncode != 0 and "GtiTable" in elsewhere.stderr, elsewhere.stderr
