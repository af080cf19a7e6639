"""Install the SAS stand-in: executables named like SAS's tasks, a SAS_DIR and a CCF folder.

The demo and the tests put ``root/bin`` first on PATH, so the pipeline finds ``epchain``
and friends exactly as it would find a real SAS install, with SAS_DIR and SAS_CCFPATH set
the way ``setsas.sh`` sets them.
"""

from __future__ import annotations

__all__ = ["install_standin", "setup_demo", "DEFAULT_VERSION"]

import os
import stat
import sys
from pathlib import Path

from daxa_xmm.standin.tasks import TASKS

DEFAULT_VERSION = "22.1.0-a8f2c2afa-20250304"


#: A few calibration files with real CCF names (INSTRUMENT_TYPE_ISSUE.CCF).
CCF_FILES = (
    "EPN_QUANTUMEF_0019.CCF", "EPN_FILTERTRANSX_0014.CCF", "EPN_LINCOORD_0007.CCF",
    "EMOS1_QUANTUMEF_0019.CCF", "EMOS1_ADUCONV_0079.CCF", "EMOS1_BADPIX_0031.CCF",
    "EMOS2_QUANTUMEF_0019.CCF", "EMOS2_ADUCONV_0080.CCF",
    "RGS1_EFFAREACORR_0009.CCF", "RGS2_EFFAREACORR_0009.CCF",
    "XRT1_XPSF_0017.CCF", "XRT3_XPSF_0015.CCF", "XMM_MISCDATA_0022.CCF", "XMM_BORESIGHT_0032.CCF",
)

#: Each task is a Python script started with ``-S``: Python's ``site`` (the venv's path files
#: and the editable install's finder) takes some 20 ms of a 40 ms fast call, and the archive
#: runs thousands of calls. The folders ``site`` would add are written in instead.
_SCRIPT = """#!{python} -S
# SAS stand-in task '{task}' (daxa_xmm.standin); not ESA's SAS.
import sys
sys.path[1:1] = {paths!r}
from daxa_xmm.standin.cli import main
raise SystemExit(main({task!r}, sys.argv[1:]))
"""


_SAS_COMMAND = """#!/bin/sh
# SAS stand-in 'sas' (daxa_xmm.standin): only --version, as DAXA 0.3.7 asks it.
case "$1" in
  --version) echo "sas (daxa_xmm.standin) [{version}]" ;;
  *) echo "** sas: error (standinUnsupported), the stand-in's sas command only answers --version" >&2; exit 1 ;;
esac
"""


def _import_paths() -> list[str]:
    """Where this package and its dependencies (astropy, numpy) are imported from."""
    import site

    here = str(Path(__file__).resolve().parents[2])
    user = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    return list(dict.fromkeys([here, *site.getsitepackages(), *user]))


def _write_exe(path: Path, text: str) -> None:
    """Write an executable script atomically."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(tmp, path)


def _write_ccf(path: Path, instrument: str, typeid: str, issue: int) -> None:
    """A small but real FITS calibration file with the CCF identification keywords."""
    from astropy.io import fits

    hdr = fits.Header()
    hdr["TELESCOP"] = ("XMM", "XMM mission")
    hdr["INSTRUME"] = (instrument, "Instrument")
    hdr["CCFTYPE"] = (typeid, "Calibration data type")
    hdr["CCFISSUE"] = (issue, "Constituent issue number")
    hdr["SCOPE"] = (instrument, "Calibration scope")
    hdr["TYPEID"] = (typeid, "Calibration data type")
    hdr["ISSUE"] = (issue, "Constituent issue number")
    hdr["VALDATE"] = ("2000-01-01T00:00:00", "Start of validity")
    hdr["SUBDATE"] = ("2020-01-01T00:00:00", "Submission date")
    hdr["DATE"] = ("2020-01-01T00:00:00", "Creation date")
    hdr["CREATOR"] = ("daxa_xmm.standin", "Not a real CCF: SAS stand-in")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fits.PrimaryHDU(header=hdr).writeto(tmp, overwrite=True)
    os.replace(tmp, path)


def install_standin(root: Path, *, sas_version: str = DEFAULT_VERSION) -> dict[str, str]:
    """Create the stand-in under ``root`` and return the environment additions.

    Args:
        root: where to put ``bin/``, ``xmmsas_<version>/`` and ``ccf/``.
        sas_version: what ``sasversion`` reports (``22.1.0-...`` or an old
            ``xmmsas_20211130_0941-20.0.0`` tag); tasks whose behaviour depends on the
            version (espfilt) follow it.

    Returns:
        ``PATH`` (bin prepended to the current PATH), ``SAS_DIR``, ``SAS_PATH``,
        ``SAS_CCFPATH`` and ``DAXA_STANDIN_SAS_VERSION``.
    """
    root = Path(root).resolve()
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    paths = _import_paths()
    for task in TASKS:
        _write_exe(bindir / task, _SCRIPT.format(python=sys.executable, task=task, paths=paths))
    # HEASoft's lcurve (XRONOS): emchain needs HEASoft, and DAXA 0.3.7 checks for lcurve
    # before it, reading the word after "Version " of `lcurve --version` as HEASoft's version
    _write_exe(bindir / "lcurve", "#!/bin/sh\necho 'lcurve Version 1.0 (HEASoft XRONOS stand-in, daxa_xmm.standin)'\n")
    # SAS's own `sas` command: DAXA 0.3.7 runs `sas --version` before any XMM step and reads
    # the version from the text in brackets at its end (sasversion's tag, old form or new)
    _write_exe(bindir / "sas", _SAS_COMMAND.format(version=sas_version))
    tag = sas_version if sas_version.startswith("xmmsas_") else f"xmmsas_{sas_version}"
    sas_dir = root / tag
    sas_dir.mkdir(exist_ok=True)
    (sas_dir / "setsas.sh").write_text(
        "# SAS stand-in (daxa_xmm.standin): the variables a real setsas.sh exports.\n"
        f'export SAS_DIR="{sas_dir}"\nexport SAS_PATH="{sas_dir}"\n'
        f'export PATH="{bindir}:$PATH"\n'
    )
    (sas_dir / "VERSION").write_text(sas_version + "\n")
    ccfdir = root / "ccf"
    ccfdir.mkdir(exist_ok=True)
    for name in CCF_FILES:
        path = ccfdir / name
        if not path.exists():
            inst, typeid, issue = name[: -len(".CCF")].rsplit("_", 2)[0], *name[: -len(".CCF")].rsplit("_", 2)[1:]
            _write_ccf(path, inst, typeid, int(issue))
    return {
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAS_DIR": str(sas_dir),
        "SAS_PATH": str(sas_dir),
        "SAS_CCFPATH": str(ccfdir),
        "DAXA_STANDIN_SAS_VERSION": sas_version,
    }


def setup_demo(base: Path) -> Path:
    """The demo: a small synthetic archive in ``base/archive`` (made once) and the stand-in in
    ``base/sas-standin``, put on this process's PATH with SAS's variables; returns the archive.

    ``python -m flows.process_archive --demo`` and the DAXA walk-through (docs/) both start here.
    """
    from daxa_xmm.standin.synth import write_archive

    base = Path(base).absolute()
    archive = base / "archive"
    if not archive.is_dir() or not any(archive.iterdir()):
        write_archive(archive, mix="demo")
    os.environ.update(install_standin(base / "sas-standin"))
    return archive
