"""The per-host SAS slots (daxa_xmm.slots.FileSlots): the cap holds across processes and
across threads sharing one instance; a wait times out; an instance pickles (Dask)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from daxa_xmm.slots import FileSlots


def _slot_worker(folder: str, n: int, record: str, hold_s: float) -> None:
    slots = FileSlots(Path(folder) / "slots", n, poll_s=0.01)
    with slots:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{time.time()!r} 1\n".encode())
        time.sleep(hold_s)
        os.write(fd, f"{time.time()!r} -1\n".encode())
        os.close(fd)


def _max_overlap(record: Path) -> int:
    events = sorted((float(t), int(d)) for t, d in (line.split() for line in record.read_text().splitlines()))
    # exits sort before enters at equal times, which can only lower the count
    events.sort(key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def test_file_slots_cap_holds_across_processes(tmp_path: Path) -> None:
    """Enter/exit times are recorded inside the held slot, so the recorded overlap can
    only under-count the real one: a peak above n is a real breach."""
    n, workers = 2, 6
    record = tmp_path / "times.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_slot_worker, args=(str(tmp_path), n, str(record), 0.3)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    assert len(record.read_text().splitlines()) == 2 * workers
    assert 1 <= _max_overlap(record) <= n


def test_file_slots_cap_holds_across_threads_sharing_one_instance(tmp_path: Path) -> None:
    slots = FileSlots(tmp_path / "slots", 3, poll_s=0.005)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work() -> None:
        for _ in range(5):
            with slots:
                with lock:
                    state["now"] += 1
                    state["peak"] = max(state["peak"], state["now"])
                time.sleep(0.01)
                with lock:
                    state["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["now"] == 0
    assert 1 <= state["peak"] <= 3


def test_file_slots_timeout_and_pickling(tmp_path: Path) -> None:
    slots = FileSlots(tmp_path / "slots", 1)
    lease = slots.acquire()
    with pytest.raises(TimeoutError):
        slots.acquire(timeout_s=0.1)
    lease.release()
    slots.acquire(timeout_s=0.1).release()
    clone = pickle.loads(pickle.dumps(slots))
    assert (clone.folder, clone.n, clone.poll_s) == (slots.folder, slots.n, slots.poll_s)
    with pytest.raises(ValueError):
        FileSlots(tmp_path, 0)
