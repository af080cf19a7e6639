"""The parameter tables of the stand-in SAS tasks: every task's parameter names and defaults.

A real SAS task knows a fixed set of parameters, each with a default, and rejects any other
name; its ``Executing (routine)`` line echoes them all, in order. These tables are that
knowledge, kept apart from the argv parsing and error reporting of
:mod:`daxa_xmm.standin.common` because they are data copied from SAS's own output and
documentation (sources beside each entry), and change when a SAS release changes a task's
parameters (espfilt before and after SAS 20), not when the stand-in's mechanics change.
"""

from __future__ import annotations

__all__ = [
    "PARAMS",
    "ESPFILT_BEFORE_20",
    "params_for",
    "sas_major",
]

#: task -> {parameter: default}: the real parameter names of each SAS task the stand-in
#: knows. espfilt (SAS >= 20), evselect, eexpmap and sasversion come verbatim from real
#: ``Executing (routine)`` lines; cifbuild from a real ccf.cif's XPROC0 record (cifbuild-4.8);
#: the others from ESA's task documentation, page named beside each (docs/SAS_FIDELITY.md).
#: Written from those sources, not from daxa_xmm/steps/: a builder that passes a parameter
#: the real task lacks fails here as it would with SAS.
PARAMS: dict[str, dict[str, str]] = {
    "sasversion": {},
    "cifbuild": {
        "calindexset": "ccf.cif",
        "withccfpath": "no",
        "usecanonicalname": "no",
        "ccfpath": ".",
        "recurse": "no",
        "fileglob": "*.ccf|*.CCF",
        "fullpath": "no",
        "withobservationdate": "no",
        "observationdate": "now",
        "analysisdate": "now",
        "category": "XMMCCF",
        "ignorecategory": "no",
        "masterindex": "no",
        "withmasterindexset": "no",
        "masterindexset": "ccf.mif",
        "append": "no",
    },
    # odfingest's parameter page (SAS docs odfingest/node14.html)
    "odfingest": {
        "odfdir": ".",
        "withodfdir": "no",
        "outdir": ".",
        "summaryfile": "0000_0000000000_SCX000SUM.SAS",
        "usecanonicalname": "yes",
        "writepath": "yes",
        "findinstrumentmodes": "yes",
        "usehousekeeping": "yes",
        "oalcheck": "no",
    },
    # epchain's parameter page (epchain/node11.html, epchain-8.82.2); the run* switches and
    # withoutoftime/runbackground/keepintermediate that the page's excerpt cut off are named
    # on its output-files page and in DAXA 0.3.7's working command lines
    "epchain": {
        "odf": "$SAS_ODF",
        "odfaccess": "oal",
        "schedule": "S",
        "datamode": "IMAGING",
        "exposure": "1",
        "ccds": "1-12",
        "keepintermediate": "none",
        "withdefaultcal": "Y",
        "usecanonicalnames": "Y",
        "outset": "events.fits",
        "ingtiset": "",
        "optloadingimage": "N",
        "optloadingimageset": "optloading.img",
        "withradmon": "N",
        "runradmonfix": "Y",
        "runatthkgen": "Y",
        "timestep": "1.0",
        "withoutoftime": "N",
        "runbackground": "Y",
        "runepframes": "Y",
        "runbadpixfind": "Y",
        "runbadpix": "Y",
    },
    # emchain's parameter page (emchain/node11.html, emchain-12.0.1); addtaglenoise and
    # keepintermediate are named in its prose and in DAXA 0.3.7's command line
    "emchain": {
        "ingtiset": "none",
        "filteratt": "no",
        "filterhk": "no",
        "badpixfindalgo": "EM",
        "randomize": "PET",
        "applyflaregti": "no",
        "odf": "$SAS_ODF",
        "exposures": "all",
        "instruments": "both",
        "ccds": "all",
        "runccdloop": "yes",
        "startfromodf": "yes",
        "stopafterbadpixfind": "no",
        "runevlistcomb": "yes",
        "makeflaregti": "yes",
        "rejectbadevents": "yes",
        "rejectionflag": "762aa000",
        "writeccdbackground": "no",
        "processlowgain": "no",
        "fulloutput": "no",
        "applyccdgti": "yes",
        "addtaglenoise": "yes",
        "keepintermediate": "no",
    },
    # rgsproc's parameter page (rgsproc/node26.html, rgsproc-1.37): the rows the page shows
    "rgsproc": {
        "entrystage": "1:events",
        "finalstage": "5:fluxing",
        "withinstexpids": "false",
        "instexpids": "",
        "orders": "1 2",
        "withprefix": "false",
        "prefix": "",
        "expunge": "events",
        "spectrumbinning": "lambda",
        "timestep": "1",
        "driftlimit": "5",
    },
    # emanom's parameters as the ESAS cookbook lists them (cookbook node89)
    "emanom": {
        "eventfile": "",
        "writekeys": "yes",
        "writelog": "yes",
        "keepcorner": "yes",
        "cornerfile": "",
    },
    "espfilt": {
        "eventfile": "dataset",
        "withoot": "no",
        "ootfile": "dataset",
        "method": "histogram",
        "withsmoothing": "yes",
        "smooth": "51",
        "withbinning": "yes",
        "binsize": "60",
        "ratio": "1.2",
        "withlongnames": "no",
        "elow": "2500",
        "ehigh": "8500",
        "rangescale": "6",
        "allowsigma": "3",
        "limits": "0.1 6.5",
        "keepinterfiles": "no",
    },
    "evselect": {
        "table": "",
        "filteredset": "filtered.fits",
        "withfilteredset": "no",
        "keepfilteroutput": "no",
        "flagcolumn": "EVFLAG",
        "flagbit": "-1",
        "destruct": "yes",
        "dssblock": "",
        "expression": "true",
        "filtertype": "expression",
        "cleandss": "no",
        "updateexposure": "yes",
        "filterexposure": "yes",
        "writedss": "yes",
        "blockstocopy": "",
        "attributestocopy": "",
        "energycolumn": "PHA",
        "zcolumn": "WEIGHT",
        "zerrorcolumn": "EWEIGHT",
        "withzerrorcolumn": "no",
        "withzcolumn": "no",
        "ignorelegallimits": "no",
        "imageset": "image.fits",
        "xcolumn": "RAWX",
        "ycolumn": "RAWY",
        "ximagebinsize": "1",
        "yimagebinsize": "1",
        "squarepixels": "no",
        "ximagesize": "600",
        "yimagesize": "600",
        "imagebinning": "imageSize",
        "ximagemin": "1",
        "ximagemax": "640",
        "withxranges": "no",
        "yimagemin": "1",
        "yimagemax": "640",
        "withyranges": "no",
        "imagedatatype": "Real64",
        "withimagedatatype": "no",
        "raimagecenter": "0",
        "decimagecenter": "0",
        "withcelestialcenter": "no",
        "withimageset": "no",
        "spectrumset": "spectrum.fits",
        "spectralbinsize": "5",
        "specchannelmin": "0",
        "specchannelmax": "11999",
        "withspecranges": "no",
        "nonStandardSpec": "no",
        "withspectrumset": "no",
        "rateset": "rate.fits",
        "timecolumn": "TIME",
        "timebinsize": "1",
        "timemin": "0",
        "timemax": "1000",
        "withtimeranges": "no",
        "maketimecolumn": "no",
        "makeratecolumn": "no",
        "withrateset": "no",
        "histogramset": "histo.fits",
        "histogramcolumn": "TIME",
        "histogrambinsize": "1",
        "histogrammin": "0",
        "histogrammax": "1000",
        "withhistoranges": "no",
        "withhistogramset": "no",
    },
    # merge: set1/set2/outset and the options its page's examples use (merge/node11.html),
    # mergedifferentobs from its ChangeLog (0.13.1)
    "merge": {
        "set1": "",
        "set2": "",
        "outset": "merged.ds",
        "mergedifferentobs": "no",
        "withradec": "no",
        "ra": "0",
        "dec": "0",
        "withset1adjustpos": "no",
        "set1deltara": "0",
        "set1deltadec": "0",
        "withset2adjustpos": "no",
        "set2deltara": "0",
        "set2deltadec": "0",
    },
    "eexpmap": {
        "imageset": "",
        "attitudeset": "",
        "eventset": "",
        "expimageset": "",
        "withdetcoords": "no",
        "withvignetting": "yes",
        "usefastpixelization": "no",
        "usedlimap": "no",
        "attrebin": "4",
        "pimin": "",
        "pimax": "",
    },
}

#: espfilt before SAS 20: no page of that era gives its parameter table; these are the
#: parameters DAXA 0.3.7 passes to it (``eventset=`` and the method knobs), whose command
#: lines are known to work with real SAS. Anything else is refused, as an unknown parameter.
ESPFILT_BEFORE_20: dict[str, str] = {
    "eventset": "dataset",
    **{k: PARAMS["espfilt"][k] for k in ("method", "withsmoothing", "smooth", "withbinning", "binsize", "ratio")},
}


def sas_major(version: str) -> int:
    """Major SAS version of ``22.1.0-...`` or ``xmmsas_20211130_0941-20.0.0``."""
    import re

    m = re.search(r"-(\d+)\.\d+\.\d+$", version) if version.startswith("xmmsas_") else re.match(r"(\d+)\.", version)
    return int(m.group(1)) if m else 22


def params_for(task: str, version: str = "") -> dict[str, str] | None:
    """The parameter table of ``task`` in the SAS release ``version`` (None: no such task)."""
    if task == "espfilt" and version and sas_major(version) < 20:
        return ESPFILT_BEFORE_20
    return PARAMS.get(task)
