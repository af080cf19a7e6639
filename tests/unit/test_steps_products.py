"""Builders of merge_subexposures and generate_images_expmaps; the one-sub-exposure placement's atomic copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from daxa_xmm.errors import ConfigError, SasInputMissing, SasOutputMissing
from daxa_xmm.layout import ArchiveLayout
from daxa_xmm.sas.filters import MOS_DEFAULT, PN_DEFAULT
from daxa_xmm.sas.placement import place
from daxa_xmm.sas.runner import raise_for_result
from daxa_xmm.steps.images import image_expmap_calls
from daxa_xmm.steps.merge import merge_calls

OBS = "0123456789"
LAY = ArchiveLayout(Path("/raw"), Path("/out"))


def test_merge_chain_of_three() -> None:
    srcs = [Path("/e/a.fits"), Path("/e/b.fits"), Path("/e/c.fits")]
    dest = Path("/out/0123456789/events/m.fits")
    plan = merge_calls(LAY, OBS, "0123456789PN-clean", srcs, dest)
    assert plan.single_source is None and plan.dest == dest
    assert [c.argv for c in plan.calls] == [
        ("merge", "set1=/e/a.fits", "set2=/e/b.fits", "outset=merge_1.fits"),
        ("merge", "set1=merge_1.fits", "set2=/e/c.fits", "outset=m.fits"),
    ]
    assert [c.outputs[0].dest for c in plan.calls] == [None, dest]
    assert [c.clean_cwd for c in plan.calls] == [True, False]
    assert len({c.cwd for c in plan.calls}) == 1


def test_merge_single_source_is_a_copy_not_a_merge() -> None:
    plan = merge_calls(LAY, OBS, "0123456789M1-clean", [Path("/e/a.fits")], Path("/d/m.fits"))
    assert plan.single_source == Path("/e/a.fits")
    (call,) = plan.calls  # one call, recorded as the merge, that runs no SAS task
    assert call.step == "merge_subexposures" and call.argv == () and call.placed_from == Path("/e/a.fits")
    assert call.products == (Path("/d/m.fits"),) and call.task == "copy"
    other = merge_calls(LAY, OBS, "0123456789M1-clean", [Path("/e/b.fits")], Path("/d/m.fits")).calls[0]
    assert other.fingerprint("22.1.0") != call.fingerprint("22.1.0")  # another source is another product
    with pytest.raises(ConfigError):
        merge_calls(LAY, OBS, "x", [], Path("/d/m.fits"))


def _events(path: Path) -> Path:
    cols = [fits.Column(c, "D", array=np.arange(3.0)) for c in ("TIME", "PI")]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="EVENTS")]).writeto(path)
    return path


def _placement(tmp_path: Path, source: Path) -> tuple[Path, object]:
    dest = tmp_path / "out" / "m.fits"
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes(b"old")
    return dest, merge_calls(LAY, OBS, "0123456789M1-clean", [source], dest).calls[0]


def test_placement_copies_atomically(tmp_path: Path) -> None:
    src = _events(tmp_path / "a.fits")
    dest, call = _placement(tmp_path, src)
    result = place(call)  # type: ignore[arg-type]
    assert result.ok and result.products == (dest,)
    assert dest.read_bytes() == src.read_bytes() and src.exists()
    assert [p.name for p in dest.parent.iterdir()] == ["m.fits"]  # no temp file left


def test_placement_of_a_missing_or_broken_source_fails_and_leaves_dest(tmp_path: Path) -> None:
    dest, call = _placement(tmp_path, tmp_path / "nope.fits")
    missing = place(call)  # type: ignore[arg-type]
    assert missing.failure == "missing_input" and "nope.fits" in missing.message
    with pytest.raises(SasInputMissing):
        raise_for_result(missing)
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  = T" * 10)
    dest, call = _placement(tmp_path, broken)
    corrupt = place(call)  # type: ignore[arg-type]
    assert corrupt.failure == "corrupt_output" and "broken.fits" in corrupt.message
    with pytest.raises(SasOutputMissing):
        raise_for_result(corrupt)
    assert dest.read_bytes() == b"old" and sorted(p.name for p in dest.parent.iterdir()) == ["m.fits"]


@pytest.mark.parametrize(
    ("inst", "lo", "hi", "expr", "band"),
    [
        ("M1", 500.0, 2000.0, MOS_DEFAULT + " && (PI in [500:2000])", "0.50-2.00keV"),
        ("PN", 2000.0, 10000.0, PN_DEFAULT + " && (PI in [2000:10000])", "2.00-10.00keV"),
    ],
)
def test_image_and_expmap(inst: str, lo: float, hi: float, expr: str, band: str) -> None:
    img, exp = image_expmap_calls(LAY, OBS, inst, lo, hi)
    fi = {"M1": "mos1", "PN": "pn"}[inst]
    events = f"/out/0123456789/events/0123456789_{fi}_merged_clean_evts.fits"
    image = f"0123456789_{fi}_{band}img.fits"
    # mirrors the real XPROC0 evselect image call of the sample image
    assert list(img.argv) == [
        "evselect", f"table={events}", f"imageset={image}", "xcolumn=X", "ycolumn=Y", "imagebinning=binSize",
        "ximagebinsize=87", "yimagebinsize=87", "squarepixels=yes", "ximagesize=512", "yimagesize=512",
        "ximagemin=3649", "ximagemax=48106", "withxranges=yes", "yimagemin=3649", "yimagemax=48106",
        "withyranges=yes", "imagedatatype=Real64", "withimagedatatype=yes", f"expression={expr}", "withimageset=yes",
    ]
    assert list(exp.argv) == [
        "eexpmap", f"imageset=/out/0123456789/images/{image}",
        "attitudeset=/out/0123456789/events/P0123456789OBX000ATTTSR0000.FIT", f"eventset={events}",
        f"expimageset=0123456789_{fi}_{band}expmap.fits", f"pimin={int(lo)}", f"pimax={int(hi)}",
    ]
    assert img.cwd == exp.cwd and not exp.clean_cwd
    assert img.outputs[0].dest == Path(f"/out/0123456789/images/{image}")


def test_image_errors() -> None:
    with pytest.raises(ConfigError):
        image_expmap_calls(LAY, OBS, "R1", 500, 2000)
    with pytest.raises(ConfigError):
        image_expmap_calls(LAY, OBS, "PN", 2000, 500)


def test_real_sample_image_header_matches_builder(xmm_samples: Path) -> None:
    """Every evselect image parameter we set has the value the real SAS image header shows."""
    from astropy.io import fits

    with fits.open(xmm_samples / "images" / "0201903501_mos1_exp1-0.50-2.00keVimg.fits", memmap=False) as hdul:
        xproc = hdul[0].header["XPROC0"]
    real = dict(tok.split("=", 1) for tok in xproc.split(" ") if "=" in tok and not tok.startswith("expression"))
    img, _ = image_expmap_calls(LAY, "0201903501", "M1", 500, 2000)
    for arg in img.argv[1:]:
        name, value = arg.split("=", 1)
        if name in ("table", "imageset", "expression"):
            continue
        assert real[name] == value, name
