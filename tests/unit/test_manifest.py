"""The per-observation manifest: round trip, atomic saves, skip logic, concurrency, corruption."""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
from pathlib import Path

import pytest

import daxa_xmm.atomic as atomic
from daxa_xmm.pipeline.identity import SUPERSEDED_MESSAGE, mark_superseded, record_token, with_upstream
from daxa_xmm.pipeline.manifest import (
    Manifest,
    StepRecord,
    is_up_to_date,
    load_manifest,
    mark,
    missing_leftovers,
    record_key,
    record_result,
    save_manifest,
)
from daxa_xmm.pipeline.manifest_store import ManifestStore
from daxa_xmm.sas.calls import OutputSpec, SasCall, SasResult
from daxa_xmm.sas.stderr import SasRecord

OBSID = "0201903501"
SAS = "22.1.0-a8f2c2afa-20250304"


def _call(tmp_path: Path, unit: str = "0201903501PNS003", step: str = "espfilt", *extra: str) -> SasCall:
    return SasCall(
        step=step, obsid=OBSID, unit=unit,
        argv=("espfilt", "eventfile=pn.fits", "method=histogram", *extra),
        cwd=tmp_path / "work" / unit / step,
        env={"SAS_CCF": str(tmp_path / "ccf.cif")},
        outputs=(OutputSpec(f"{unit}-gti.fits", tmp_path / "products" / unit / "gti.fits"),
                 OutputSpec(f"{unit}-hist.qdp")),
    )


def _result(call: SasCall, status: str = "ok", *, make_outputs: bool = True) -> SasResult:
    """A result as run_sas would return it, with its outputs really on disk when ok."""
    products: tuple[Path, ...] = ()
    if status == "ok" and make_outputs:
        Path(call.cwd).mkdir(parents=True, exist_ok=True)
        for out in call.outputs:
            target = out.dest if out.dest is not None else Path(call.cwd) / out.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("x")
        products = call.products
    records = (SasRecord("evselect", "warning", "NoWCS", "No WCS"),)
    if status == "failed":
        records += (SasRecord("espfilt", "error", "noCounts", "All histo counts are zero!"),)
    return SasResult(
        call=call, status=status, exit_code=0 if status != "timeout" else -9,  # type: ignore[arg-type]
        records=records, products=products, started=1_700_000_000.0, ended=1_700_000_012.5,
        stdout_log=Path(call.cwd) / "x.stdout.log", stderr_log=Path(call.cwd) / "x.stderr.log",
        message="" if status == "ok" else f"espfilt [{call.unit}]: boom",
    )


def test_record_result_fields_and_round_trip(tmp_path: Path) -> None:
    call = _call(tmp_path)
    m = Manifest(obsid=OBSID)
    rec = record_result(m, _result(call, "failed"), SAS, attempts=2)
    assert m.records == {"0201903501PNS003/espfilt": rec}
    assert rec.key == record_key(call.unit, call.step)
    assert rec.status == "failed" and rec.attempts == 2
    assert rec.argv == list(call.argv)
    assert rec.fingerprint == call.fingerprint(SAS)
    assert rec.ccf == tmp_path / "ccf.cif"
    assert rec.duration_s == 12.5
    assert rec.errors == [{"task": "espfilt", "level": "error", "name": "noCounts",
                           "message": "All histo counts are zero!"}]
    assert [w["name"] for w in rec.warnings] == ["NoWCS"]
    assert rec.message.endswith("boom")
    assert m.updated is not None

    path = tmp_path / "manifest.json"
    save_manifest(m, path)
    raw = json.loads(path.read_text())
    assert raw["records"]["0201903501PNS003/espfilt"]["started"].startswith("2023-11-14T22:13:20")
    assert load_manifest(path, OBSID) == m


def test_missing_file_gives_empty_manifest(tmp_path: Path) -> None:
    m = load_manifest(tmp_path / "nope.json", OBSID)
    assert m.obsid == OBSID and m.records == {}


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "manifest.json"
    first = Manifest(obsid=OBSID)
    record_result(first, _result(_call(tmp_path)), SAS)
    save_manifest(first, path)
    before = path.read_bytes()

    second = first.model_copy(deep=True)
    mark(second, _call(tmp_path, "0201903501M1S001"), "upstream_failed", "emchain failed")

    def crash(*args: object) -> None:
        raise OSError("killed mid-save")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        save_manifest(second, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_manifest(path, OBSID) == first
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_up_to_date_logic(tmp_path: Path) -> None:
    call = _call(tmp_path)
    m = Manifest(obsid=OBSID)
    assert not is_up_to_date(m, call, SAS)  # never ran
    record_result(m, _result(call), SAS)
    assert is_up_to_date(m, call, SAS)
    # a changed parameter, SAS version or upstream input re-runs the call
    assert not is_up_to_date(m, _call(tmp_path, "0201903501PNS003", "espfilt", "ratio=1.3"), SAS)
    assert not is_up_to_date(m, call, "21.0.0")
    upstream_changed = SasCall(**{**call.__dict__, "extra": {"upstream": ["abc"]}})
    assert not is_up_to_date(m, upstream_changed, SAS)
    # a deleted product re-runs it
    dest = call.products[0]
    dest.unlink()
    assert not is_up_to_date(m, call, SAS)
    dest.write_text("x")
    assert is_up_to_date(m, call, SAS)
    # a deleted intermediate does not: it matters only to a later call that must run
    (Path(call.cwd) / call.outputs[1].name).unlink()
    assert is_up_to_date(m, call, SAS)


def test_missing_leftovers_names_what_a_later_call_lost(tmp_path: Path) -> None:
    # epchain's normal run reads what the OOT run left in their shared working folder
    oot = _call(tmp_path, "0201903501PNS003", "epchain_oot")
    normal = SasCall(**{**oot.__dict__, "step": "epchain", "clean_cwd": False, "reads_cwd_of": "epchain_oot"})
    m = Manifest(obsid=OBSID)
    assert missing_leftovers(m, normal) == ["<output of epchain_oot>"]  # the OOT run never ran
    Path(oot.cwd).mkdir(parents=True)
    for name in ("rawevents01.dat", "atthk.dat"):
        (Path(oot.cwd) / name).write_text("x")
    res = _result(oot)
    record_result(m, SasResult(**{**res.__dict__, "leftovers": ("atthk.dat", "rawevents01.dat")}), SAS)
    assert missing_leftovers(m, normal) == []
    assert missing_leftovers(m, oot) == []  # a call that reads no earlier folder
    (Path(oot.cwd) / "rawevents01.dat").unlink()
    assert missing_leftovers(m, normal) == ["rawevents01.dat"]
    # a record of an older version (no list) asks for a non-empty folder
    m.records[record_key(oot.unit, oot.step)].leftovers = None
    assert missing_leftovers(m, normal) == []
    for f in Path(oot.cwd).iterdir():
        f.unlink()
    assert missing_leftovers(m, normal) != []


@pytest.mark.parametrize("status", ["failed", "timeout"])
def test_failed_is_never_up_to_date(tmp_path: Path, status: str) -> None:
    call = _call(tmp_path)
    m = Manifest(obsid=OBSID)
    _result(call)  # outputs present on disk all the same
    record_result(m, _result(call, status), SAS)
    assert not is_up_to_date(m, call, SAS)


@pytest.mark.parametrize("status", ["skipped", "upstream_failed", "running"])
def test_mark(tmp_path: Path, status: str) -> None:
    call = _call(tmp_path)
    m = Manifest(obsid=OBSID)
    _result(call)
    rec = mark(m, call, status, "epchain [0201903501PNS003] failed")  # type: ignore[arg-type]
    assert m.get(call.unit, call.step) == rec
    assert rec.status == status and rec.exit_code is None and rec.attempts == 0
    assert (rec.started is not None) == (status == "running")
    assert not is_up_to_date(m, call, SAS)


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe garbage", b'{"obsid": 5, "records": []}',
     json.dumps({"obsid": "0000000000", "records": {}}).encode()],
    ids=["bad-json", "bad-utf8", "bad-schema", "other-obsid"],
)
def test_corrupt_file_is_kept_aside(tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="daxa_xmm.pipeline.manifest"):
        m = load_manifest(path, OBSID)
    assert m == Manifest(obsid=OBSID)
    copies = list(tmp_path.glob("manifest.json.corrupt-*"))
    assert len(copies) == 1 and copies[0].read_bytes() == content
    assert "manifest.json.corrupt-" in caplog.text


def test_store_replaces_a_corrupt_file_once(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text("{truncated")
    store = ManifestStore(path, OBSID)
    assert store.snapshot().records == {}
    assert store.get("u", "s") is None
    store.record(_result(_call(tmp_path)), SAS)
    assert len(list(tmp_path.glob("manifest.json.corrupt-*"))) == 1
    assert list(load_manifest(path, OBSID).records) == ["0201903501PNS003/espfilt"]


def test_store_round_trip_and_skip(tmp_path: Path) -> None:
    path = tmp_path / "processed" / OBSID / "manifest.json"
    store = ManifestStore(path, OBSID)
    call = _call(tmp_path)
    assert not store.is_up_to_date(call, SAS)
    store.mark(call, "running")
    assert store.get(call.unit, call.step).status == "running"  # type: ignore[union-attr]
    store.record(_result(call), SAS)
    assert store.is_up_to_date(call, SAS)
    # a new store (a later run) sees the same
    assert ManifestStore(path, OBSID).is_up_to_date(call, SAS)
    snap = store.snapshot()
    snap.records.clear()
    assert store.get(call.unit, call.step) is not None  # a snapshot is a copy


def test_concurrent_updates_from_8_threads_lose_nothing(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path / "manifest.json", OBSID)
    per_thread = 15
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for j in range(per_thread):
                call = _call(tmp_path, f"unit{i}", f"step{j}")
                if j % 2:
                    store.record(_result(call, "failed"), SAS)
                else:
                    store.mark(call, "skipped", "n/a")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    on_disk = load_manifest(tmp_path / "manifest.json", OBSID)
    assert sorted(on_disk.records) == sorted(f"unit{i}/step{j}" for i in range(8) for j in range(per_thread))


def _process_worker(path: str, worker: int) -> None:
    store = ManifestStore(path, OBSID)
    for j in range(10):
        store.update(lambda m, j=j: m.put(StepRecord(step=f"s{j}", unit=f"p{worker}", status="ok")))


def test_concurrent_updates_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert len(load_manifest(path, OBSID).records) == 30


def _made_from(m: Manifest, tmp_path: Path, step: str, *inputs: str) -> str:
    """Record ``step`` as made from the records ``inputs`` (keys), as the chains fold their
    tokens in; return its key."""
    call = with_upstream(_call(tmp_path, "0201903501PNS003", step, f"step={step}"), [record_token(m.records[k]) for k in inputs])
    return record_result(m, _result(call), SAS).key


def test_what_was_made_from_a_remade_product_is_stale_transitively(tmp_path: Path) -> None:
    # issue 34.1: a product whose input was remade since (any run, any settings) is never ok
    m = Manifest(obsid=OBSID)
    espfilt = _made_from(m, tmp_path, "espfilt")
    clean = _made_from(m, tmp_path, "clean", espfilt)
    image = _made_from(m, tmp_path, "image", espfilt, clean)
    old = _made_from(m, tmp_path, "legacy")
    m.records[old] = m.records[old].model_copy(update={"upstream": None})  # a record of an older version
    assert mark_superseded(m) == []
    later = _result(_call(tmp_path, "0201903501PNS003", "espfilt", "step=espfilt", "smooth=41"))
    record_result(m, SasResult(**{**later.__dict__, "ended": later.ended + 60}), SAS)
    assert mark_superseded(m) == [clean, image]
    assert {k: r.status for k, r in m.records.items()} == {espfilt: "ok", clean: "stale", image: "stale", old: "ok"}
    assert m.records[image].message == SUPERSEDED_MESSAGE
    assert mark_superseded(m) == []  # nothing left to find


def test_a_product_whose_input_failed_since_is_stale(tmp_path: Path) -> None:
    m = Manifest(obsid=OBSID)
    espfilt = _made_from(m, tmp_path, "espfilt")
    clean = _made_from(m, tmp_path, "clean", espfilt)
    record_result(m, _result(_call(tmp_path, "0201903501PNS003", "espfilt", "step=espfilt"), "failed"), SAS)
    assert mark_superseded(m) == [clean]


def test_a_manifest_found_in_another_folder_follows_it(tmp_path: Path) -> None:
    # issue 34.8: records' paths follow a moved folder; fingerprints stay those of the first folder
    first = tmp_path / "disk1" / OBSID
    call = _call(first)
    store = ManifestStore(first / "manifest.json", OBSID)
    store.record(_result(call), SAS)
    saved = store.snapshot().get(call.unit, call.step)
    assert saved is not None
    moved = tmp_path / "disk2" / OBSID
    moved.parent.mkdir()
    first.rename(moved)
    m = load_manifest(moved / "manifest.json", OBSID)
    rec = m.get(call.unit, call.step)
    assert rec is not None and rec.fingerprint == saved.fingerprint
    assert rec.cwd == moved / "work" / call.unit / call.step
    assert rec.products == [moved / "products" / call.unit / "gti.fits"]
    there = _call(moved)
    assert is_up_to_date(m, there, SAS)
    assert not is_up_to_date(m, _call(moved, call.unit, call.step, "smooth=41"), SAS)
    # a call recorded after the move is fingerprinted as if made in the first folder, so the
    # move never splits one observation's records into two kinds
    assert record_result(m, _result(there), SAS).fingerprint == saved.fingerprint


def test_a_data_quality_outcome_is_reused_as_made_but_never_counts_as_ok(tmp_path: Path) -> None:
    # issue 33.3: deterministic, so the same inputs and thresholds do not redo it; but what was
    # made from the ok product it replaced is stale, as after a failure
    call = _call(tmp_path)
    m = Manifest(obsid=OBSID)
    ok = record_result(m, _result(call), SAS)
    cleaned = record_result(m, _result(with_upstream(_call(tmp_path, step="cleaned_evt_lists"), [record_token(ok)])), SAS)
    unusable = SasResult(**{**_result(call).__dict__, "status": "data_quality", "quality": ("flare_gti",),
                            "message": f"espfilt [{call.unit}]: data quality, not a SAS error: gti.fits: fully flared",
                            "ended": 1_700_000_099.0})
    rec = record_result(m, unusable, SAS)
    assert (rec.status, rec.quality, rec.products) == ("data_quality", ["flare_gti"], list(call.products))
    assert is_up_to_date(m, call, SAS)  # nothing to redo
    assert not is_up_to_date(m, _call(tmp_path, "0201903501PNS003", "espfilt", "ratio=1.3"), SAS)  # new inputs: redone
    assert mark_superseded(m) == [cleaned.key]
    call.products[0].unlink()
    assert not is_up_to_date(m, call, SAS)  # its product gone: redone
