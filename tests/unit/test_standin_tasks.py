"""The SAS stand-in's tasks, driven as executables exactly as the pipeline drives SAS."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.odf.unpack import unpack_odf
from daxa_xmm.standin.common import SasExit, parse_args
from daxa_xmm.standin.install import install_standin
from daxa_xmm.standin.params import PARAMS
from daxa_xmm.standin.testing import TINY_OBSID, write_tiny_odf

PN_EVT = f"P{TINY_OBSID}PNS003PIEVLI0000.FIT"
PN_OOT = f"P{TINY_OBSID}PNS003OOEVLI0000.FIT"
M1_EVT = f"P{TINY_OBSID}M1S001MIEVLI0000.FIT"
ATT = f"P{TINY_OBSID}OBX000ATTTSR0000.FIT"


class Sas:
    """An installed stand-in plus a work folder; ``run`` calls a task like the runner does."""

    def __init__(self, root: Path, version: str = "22.1.0-a8f2c2afa-20250304") -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SAS_", "DAXA_STANDIN"))}
        self.env.update(install_standin(root / "sas", sas_version=version))
        self.work = root / "work"
        self.work.mkdir(exist_ok=True)

    def run(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        e = {**self.env, **env}
        return subprocess.run(list(argv), cwd=self.work, env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The whole chain run once by hand, task by task; later tests read its products."""
    root = tmp_path_factory.mktemp("chain")
    sas = Sas(root)
    odf = write_tiny_odf(root / "odf")
    out: dict[str, object] = {"sas": sas, "odf": odf}
    r = sas.run("cifbuild", "calindexset=ccf.cif", "withobservationdate=yes", "observationdate=2004-06-17",
                "analysisdate=now", "fullpath=yes")
    assert r.returncode == 0, r.stderr
    ccf = str(sas.work / "ccf.cif")
    out["ccf"] = ccf
    r = sas.run("odfingest", f"odfdir={odf}", f"outdir={odf}", "withodfdir=yes", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    summary = next(odf.glob("*SUM.SAS"))
    out["summary"] = summary
    pn = ["odfaccess=odf", "exposure=003", "schedule=S", "ccds=1 2 3 4 5 6 7 8 9 10 11 12"]
    r = sas.run("epchain", f"odf={summary}", *pn, "withoutoftime=Y", "keepintermediate=raw", "runbackground=N",
                SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    assert (sas.work / PN_OOT).is_file()
    r = sas.run("epchain", f"odf={summary}", *pn, "runradmonfix=N", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    r = sas.run("emchain", f"odf={summary}", "instruments=M1", "exposures=S001", "addtaglenoise=no",
                "makeflaregti=no", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    assert (sas.work / M1_EVT).is_file()
    r = sas.run("emanom", f"eventfile={M1_EVT}", "keepcorner=no", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    r = sas.run("espfilt", f"eventfile={PN_EVT}", "withoot=yes", f"ootfile={PN_OOT}", "method=histogram",
                "withsmoothing=yes", "smooth=51", "withbinning=yes", "binsize=60", "ratio=1.2", "elow=2500",
                "ehigh=8500", "rangescale=15", "allowsigma=3", "keepinterfiles=yes", "limits='0.1 6.5'", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    out["espfilt_stdout"] = r.stdout
    assert (sas.work / "pnS003-gti.fits").is_file()
    clean = "pn_clean.fits"
    if Path(__file__).resolve().parents[2].joinpath("daxa_xmm/standin/evselect.py").exists():
        r = sas.run("evselect", f"table={PN_EVT}", f"filteredset={clean}", "withfilteredset=yes",
                    "expression=#XMMEA_EP && (PATTERN <= 4) && (FLAG .eq. 0) && gti(pnS003-gti.fits,TIME)",
                    "updateexposure=yes", "filterexposure=yes", "keepfilteroutput=yes", SAS_CCF=ccf)
        out["evselect_rc"] = r.returncode
    if not (sas.work / clean).is_file():  # evselect not available yet: espfilt's GTI-cleaned list stands in
        clean = "pnS003-allevc.fits"
    r = sas.run("merge", f"set1={clean}", "set2=pnS003-allevc.fits", "outset=pn_merged.fits", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    img = sas.work / "pn_img.fits"
    fits.PrimaryHDU(data=np.zeros((64, 64), dtype="f4")).writeto(img)
    assert (sas.work / ATT).is_file()
    r = sas.run("eexpmap", f"imageset={img.name}", f"attitudeset={ATT}", "eventset=pn_merged.fits",
                "expimageset=pn_expmap.fits", "pimin=500", "pimax=2000", "withvignetting=yes", SAS_CCF=ccf)
    assert r.returncode == 0, r.stderr
    return out


# ------------------------------------------------------------------- argument parsing

def test_parse_args_splits_at_first_equals_and_strips_one_quote_pair() -> None:
    args = parse_args("evselect", ["expression='PI in [500:2000] && CCDNR==1'", "table=a=b.fits"])
    assert args == {"expression": "PI in [500:2000] && CCDNR==1", "table": "a=b.fits"}


def test_parse_args_keeps_inner_quotes_and_accepts_long_form_and_options() -> None:
    args = parse_args("espfilt", ["--elow=2500", "limits=0.1 6.5", "-w", "1", "-V", "4"])
    assert args == {"elow": "2500", "limits": "0.1 6.5", "-w": "1", "-V": "4"}


@pytest.mark.parametrize("argv", [["nosuch=1"], ["elow"], ["-w"], ["-x"]])
def test_parse_args_rejects(argv: list[str]) -> None:
    with pytest.raises(SasExit):
        parse_args("espfilt", argv)


def test_real_parameter_lists_match_the_executing_lines(xmm_samples: Path) -> None:
    """espfilt/evselect/eexpmap parameters are exactly those SAS echoes (same order)."""
    text = (xmm_samples / "sas_logs" / "executing_routine_lines_by_task.txt").read_text()
    for task in ("espfilt", "evselect", "eexpmap"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{task}:- Executing (routine): {task} "))
        body = line.split(f"Executing (routine): {task} ", 1)[1].split("  -w")[0]
        names = [tok.split("=", 1)[0] for tok in body.split(" ") if "=" in tok and not tok.startswith(("6.5", "'"))]
        names = [n for n in names if n in PARAMS[task] or n.isidentifier()]
        assert [n for n in names if n in PARAMS[task]] == list(PARAMS[task])


# ---------------------------------------------------------------- executables, errors

def test_unknown_parameter_fails_like_sas(tmp_path: Path) -> None:
    r = Sas(tmp_path).run("emchain", "odf=x", "instruments=M1", "nosuchparam=3")
    assert r.returncode == 1
    assert r.stderr.startswith("** emchain: error (UnknownParameter), 'nosuchparam'")


def test_sasversion_prints_release_block(tmp_path: Path) -> None:
    r = Sas(tmp_path).run("sasversion")
    assert r.returncode == 0
    assert "sasversion:- XMM-Newton SAS release and build information:" in r.stdout
    assert "SAS release: 22.1.0-a8f2c2afa-20250304" in r.stdout


def test_sasversion_old_form(tmp_path: Path) -> None:
    r = Sas(tmp_path, version="xmmsas_20211130_0941-20.0.0").run("sasversion")
    assert "[xmmsas_20211130_0941-20.0.0]" in r.stdout and "SAS release" not in r.stdout


def test_odfingest_needs_sas_ccf(tmp_path: Path) -> None:
    odf = write_tiny_odf(tmp_path / "odf")
    r = Sas(tmp_path).run("odfingest", f"odfdir={odf}", f"outdir={odf}", "withodfdir=yes")
    assert r.returncode == 1
    assert "** odfingest: error (SAS_CCFUndefined)" in r.stderr
    assert not list(odf.glob("*SUM.SAS"))


def test_missing_input_names_the_file(tmp_path: Path) -> None:
    r = Sas(tmp_path).run("espfilt", "eventfile=nothere.fits")
    assert r.returncode == 1
    assert "** espfilt: error (datasetCouldNotBeRead)" in r.stderr and "nothere.fits" in r.stderr


def test_cifbuild_without_observation_date_needs_sas_odf(tmp_path: Path) -> None:
    r = Sas(tmp_path).run("cifbuild", "calindexset=ccf.cif", "withobservationdate=no")
    assert r.returncode == 1 and "(SAS_ODFUndefined)" in r.stderr


# ------------------------------------------------------------------------ the chain

def test_cifbuild_writes_calindex(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    with fits.open(sas.work / "ccf.cif") as hdul:
        cal = hdul["CALINDEX"]
        assert {"SCOPE", "TYPEID", "ISSUE", "FNAME"} <= set(cal.columns.names)
        assert "EPN" in [s.strip() for s in cal.data["SCOPE"]]
        assert cal.header["OBSVDATE"].startswith("2004-06-17")
        assert hdul[0].header["XPROC0"].startswith("cifbuild calindexset=ccf.cif")


def test_odfingest_summary_round_trips_through_the_parser(chain: dict[str, object]) -> None:
    from daxa_xmm.odf.summary import read_odf_summary

    summary = read_odf_summary(chain["summary"])
    assert summary.observation.obsid == TINY_OBSID
    assert set(summary.instruments["PN"].exposures) == {"S003", "U002"}
    s003 = summary.instruments["PN"].exposures["S003"]
    assert s003.scheduled and s003.filter == "Thin1" and s003.mode == "PrimeFullWindow"
    assert set(s003.ccd_modes) == set(range(1, 13))
    assert summary.instruments["PN"].exposures["U002"].ccd_modes == {1: "DiscardedLinesData"}
    assert summary.instruments["M1"].exposures["S001"].filter == "Medium"
    assert not summary.instruments["OM"].active


def test_odfingest_matches_real_layout(chain: dict[str, object]) -> None:
    text = Path(chain["summary"]).read_text()
    assert "003 / Exposure Identifier [also S003]" in text
    assert "CONFIGURATION EPIC PN" in text and "CONFIGURATION EPIC MOS" in text
    assert "SAS_MANIFEST = xmmsas_22.1.0-a8f2c2afa-20250304 / SAS Manifest" in text


def test_event_list_layout(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    with fits.open(sas.work / PN_EVT) as hdul:
        ev = hdul["EVENTS"]
        assert ev.columns.names == ["TIME", "RAWX", "RAWY", "DETX", "DETY", "X", "Y", "PHA", "PI", "FLAG",
                                    "PATTERN", "CCDNR"]
        assert [c.format for c in ev.columns] == ["D", "I", "I", "I", "I", "J", "J", "I", "I", "J", "B", "B"]
        h = ev.header
        assert h["INSTRUME"] == "EPN" and h["OBS_ID"] == TINY_OBSID and h["EXPIDSTR"] == "S003"
        assert h["XMMEA_EP"].startswith("(FLAG & 0x") and h["TCTYP6"] == "RA---TAN"
        assert (ev.data["FLAG"] != 0).any() and (ev.data["PATTERN"] > 4).any()
        assert len([x for x in hdul if x.name.startswith("STDGTI")]) == 12


def test_epchain_unknown_exposure_fails(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    r = sas.run("epchain", f"odf={chain['summary']}", "exposure=042", "schedule=S", SAS_CCF=chain["ccf"])
    assert r.returncode == 1 and "(ExposureNotFound)" in r.stderr


def test_rgsproc_stages_in_order(tmp_path: Path, chain: dict[str, object]) -> None:
    sas = Sas(tmp_path)
    env = {"SAS_CCF": chain["ccf"], "SAS_ODF": str(chain["summary"])}
    ids = ["withinstexpids=true", "instexpids=R1S004"]
    r = sas.run("rgsproc", "entrystage=2:angles", "finalstage=2:angles", *ids, **env)
    assert r.returncode == 1, "stage 2 without stage 1's list must fail"
    for stage in ("1:events", "2:angles", "3:filter"):
        r = sas.run("rgsproc", f"entrystage={stage}", f"finalstage={stage}", *ids, **env)
        assert r.returncode == 0, r.stderr
    with fits.open(sas.work / f"P{TINY_OBSID}R1S004EVENLI0000.FIT") as hdul:
        assert "BETA_CORR" in hdul["EVENTS"].columns.names


def test_emanom_log_has_a_state_per_chip_2_to_7(chain: dict[str, object]) -> None:
    from daxa_xmm.sas.emanom_log import parse_emanom_states

    log = chain["sas"].work / "mos1S001-anom.log"
    states = parse_emanom_states(log)
    assert set(states) <= set(range(2, 8)) and len(states) >= 5  # chip 1 has no corner data


def test_espfilt_gti_excludes_the_flare(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    with fits.open(sas.work / "pnS003-gti.fits") as hdul:
        gti = hdul["STDGTI"].data
        good = float((gti["STOP"] - gti["START"]).sum())
    with fits.open(sas.work / PN_EVT) as hdul:
        span = hdul["EVENTS"].header["TSTOP"] - hdul["EVENTS"].header["TSTART"]
    assert 0.5 * span < good < 0.95 * span
    for name in ("pnS003-allevc.fits", "pnS003-allevcoot.fits", "pnS003-hist.qdp"):
        assert (sas.work / name).is_file()
    assert "espfilt:- Executing (routine): espfilt eventfile=" in chain["espfilt_stdout"]


def test_espfilt_long_names_and_nocounts(chain: dict[str, object], tmp_path: Path) -> None:
    sas = Sas(tmp_path, version="xmmsas_20211130_0941-20.0.0")
    evt = str(chain["sas"].work / PN_EVT)
    r = sas.run("espfilt", f"eventfile={evt}", "withlongnames=yes", "elow=2500", "ehigh=8500")
    assert r.returncode == 0, r.stderr
    assert {"pnS003-gti-2500-8500.fits", "pnS003-allevc-2500-8500.fits", "pnS003-hist-2500-8500.qdp"} <= set(
        os.listdir(sas.work))
    r = sas.run("espfilt", f"eventfile={evt}", "elow=20000", "ehigh=30000")
    assert r.returncode == 1
    assert "** espfilt: error (noCounts), All histo counts are zero! Check your FOV Lightcurve!" in r.stderr


def test_merge_sorts_and_rejects_mixed_instruments(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    with fits.open(sas.work / "pn_merged.fits") as hdul:
        t = hdul["EVENTS"].data["TIME"]
        assert (t[1:] >= t[:-1]).all()
    r = sas.run("merge", f"set1={PN_EVT}", f"set2={M1_EVT}", "outset=bad.fits")
    assert r.returncode == 1 and "(incompatibleInstruments)" in r.stderr
    assert not (sas.work / "bad.fits").exists()


def test_eexpmap_shape_and_values(chain: dict[str, object]) -> None:
    sas = chain["sas"]
    data = fits.getdata(sas.work / "pn_expmap.fits")
    assert data.shape == (64, 64)
    assert data.max() > 0 and data.min() >= 0


def test_evselect_in_the_chain(chain: dict[str, object]) -> None:
    if "evselect_rc" not in chain:
        pytest.skip("the stand-in evselect is not written yet")
    assert chain["evselect_rc"] == 0


@pytest.mark.parametrize("mix", ["standard", "multi_pn", "timing", "om_only", "closed_filter"])
@pytest.mark.parametrize("gz", [False, True])
def test_odfingest_round_trips_synthetic_odfs(tmp_path: Path, mix: str, gz: bool) -> None:
    """Every exposure the generator writes comes back from the parsed summary unchanged."""
    import random

    from daxa_xmm.odf.summary import read_odf_summary
    from daxa_xmm.standin import synth

    spec = synth.spec_for(mix, 0, random.Random(1))
    odf = synth.write_odf(tmp_path / "archive", "0201903501", spec, gzip=gz)
    if gz:  # the pipeline unpacks gzipped constituents before odfingest sees them
        odf = unpack_odf(ArchiveLayout(tmp_path / "archive", tmp_path / "out"), "0201903501")
        assert odf == tmp_path / "out" / "0201903501" / "odf" and not list(odf.glob("*.gz"))
    sas = Sas(tmp_path)
    r = sas.run("cifbuild", "withobservationdate=yes", "observationdate=2004-06-17")
    assert r.returncode == 0, r.stderr
    r = sas.run("odfingest", f"odfdir={odf}", f"outdir={sas.work}", "withodfdir=yes", SAS_CCF=str(sas.work / "ccf.cif"))
    assert r.returncode == 0, r.stderr
    summary = read_odf_summary(next(sas.work.glob("*SUM.SAS")))
    for exp in spec.exposures:
        got = summary.instruments[exp.inst].exposures[exp.exp_id]
        assert got.scheduled == exp.exp_id.startswith("S")
        assert got.mode == exp.submode
        if exp.inst == "OM":  # windows, not CCDs
            assert got.ccd_modes == {}
            continue
        assert set(got.ccd_modes.values()) == {exp.datamode}
        if exp.ccds is not None:
            assert set(got.ccd_modes) == set(exp.ccds)
        if exp.inst not in ("R1", "R2"):
            assert got.filter == exp.filter
    assert sum(len(i.exposures) for i in summary.instruments.values()) == len(spec.exposures)


def test_event_list_mirrors_a_real_mos_list(chain: dict[str, object], xmm_samples: Path) -> None:
    """Same columns, formats, units and flag-macro keyword as a real emchain list."""
    real = xmm_samples / "events" / "0201903501_mos1_S001_clean_evts.fits"
    with fits.open(real) as r, fits.open(chain["sas"].work / M1_EVT) as s:
        rc, sc = r["EVENTS"].columns, s["EVENTS"].columns
        assert sc.names == rc.names
        assert [c.format for c in sc] == [c.format for c in rc]
        assert [c.unit for c in sc] == [c.unit for c in rc]
        assert s["EVENTS"].header["XMMEA_EM"] == r["EVENTS"].header["XMMEA_EM"]
        for key in ("TCTYP6", "TCRPX6", "TCDLT6", "TLMAX6", "TLMIN9", "TLMAX9"):
            want = r["EVENTS"].header[key]
            assert s["EVENTS"].header[key] == (pytest.approx(want, rel=1e-9) if isinstance(want, float) else want)


@pytest.mark.parametrize(
    ("analysisdate", "issue", "valdate", "valdate_end"),
    [
        # 0082 starts after the observation, 0081 was submitted after the analysis date,
        # 0080's validity (EVALDATE) ended before the observation: 0079
        ("2018-07-27T17:50:42", 79, "2003-11-09T18:00:01", "2005-01-21T18:00:00"),
        ("now", 81, "2003-11-09T18:00:01", "2005-01-21T18:00:00"),  # 0081 is submitted by now
    ],
)
def test_cifbuild_selects_by_validity_window(tmp_path: Path, analysisdate: str, issue: int, valdate: str,
                                            valdate_end: str) -> None:
    ccfdir = tmp_path / "ccfdir"
    ccfdir.mkdir()
    files = {
        "EMOS1_ADUCONV_0079.CCF": {"VALDATE": "2003-11-09T18:00:01", "SUBDATE": "2012-02-17T06:00:02"},
        "EMOS1_ADUCONV_0080.CCF": {"VALDATE": "2003-11-09T18:00:01", "EVALDATE": "2004-01-01T00:00:00"},
        "EMOS1_ADUCONV_0081.CCF": {"VALDATE": "2003-11-09T18:00:01", "SUBDATE": "2020-01-01T00:00:00"},
        "EMOS1_ADUCONV_0082.CCF": {"VALDATE": "2005-01-21T18:00:00"},
        "XRT1_XPSF_0017.CCF": {"DATE": "2020-01-01T00:00:00"},  # no VALDATE: included
        "EPN_LATE_0001.CCF": {"VALDATE": "2010-01-01T00:00:00"},  # not valid yet in 2004: left out
    }
    for name, keys in files.items():
        hdr = fits.Header()
        for k, v in keys.items():
            hdr[k] = v
        fits.PrimaryHDU(header=hdr).writeto(ccfdir / name)
    r = Sas(tmp_path).run("cifbuild", "calindexset=ccf.cif", "withccfpath=yes", f"ccfpath={ccfdir}",
                          "withobservationdate=yes", "observationdate=2004-06-17T10:38:28",
                          f"analysisdate={analysisdate}")
    assert r.returncode == 0, r.stderr
    with fits.open(tmp_path / "work" / "ccf.cif") as hdul:
        cal = hdul["CALINDEX"]
        rows = {(s.strip(), t.strip()): (int(i), v.strip(), e.strip())
                for s, t, i, v, e in zip(cal.data["SCOPE"], cal.data["TYPEID"], cal.data["ISSUE"],
                                         cal.data["VALDATE"], cal.data["VALDATE-END"], strict=True)}
        assert cal.header["OBSVDATE"] == "2004-06-17T10:38:28"
    assert set(rows) == {("EMOS1", "ADUCONV"), ("XRT1", "XPSF")}
    assert rows[("EMOS1", "ADUCONV")] == (issue, valdate, valdate_end)
    assert rows[("XRT1", "XPSF")] == (17, "", "")


def test_every_stand_in_task_has_its_parameter_table_and_every_table_a_task() -> None:
    """The parameters are kept apart from the task table (data copied from SAS's sources):
    a task added to one and not the other would accept any parameter, or not exist."""
    from daxa_xmm.standin.params import PARAMS
    from daxa_xmm.standin.tasks import TASKS

    assert set(PARAMS) == set(TASKS)
