"""The per-host SAS slots (daxa_xmm.sas.slots.FileSlots): the cap holds across processes and
across threads sharing one instance; a freed slot goes to the waiting call with the highest
priority, first come first served among equals, and a dead waiter holds no one up; a wait
times out; an instance pickles (Dask)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from daxa_xmm.sas.slots import FileSlots


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


def test_the_cap_is_reached_not_only_never_passed(tmp_path: Path) -> None:
    """n slots are held at once without a wait (a cap that served one call at a time would
    pass every never-more-than-n test); the next waits."""
    slots = FileSlots(tmp_path / "slots", 2)
    first, second = slots.acquire(timeout_s=5), slots.acquire(timeout_s=5)
    with pytest.raises(TimeoutError):
        slots.acquire(timeout_s=0.1)
    second.release()
    slots.acquire(timeout_s=5).release()
    first.release()


def test_file_slots_timeout_and_pickling(tmp_path: Path) -> None:
    slots = FileSlots(tmp_path / "slots", 1)
    lease = slots.acquire()
    with pytest.raises(TimeoutError):
        slots.acquire(timeout_s=0.1)
    lease.release()
    slots.acquire(timeout_s=0.1).release()
    assert not list((tmp_path / "slots" / "queue").iterdir())  # the timed-out wait left no ticket
    slots = FileSlots(tmp_path / "slots", 1, priority=12.5)
    clone = pickle.loads(pickle.dumps(slots))
    assert (clone.folder, clone.n, clone.poll_s, clone.priority) == (slots.folder, slots.n, slots.poll_s, 12.5)
    with pytest.raises(ValueError):
        FileSlots(tmp_path, 0)


def _served_in_order(folder: Path, priorities: list[float]) -> list[float]:
    """Hold the only slot, queue one waiting thread per priority (each once the previous
    one's ticket is in the queue), free the slot: the priorities in the order served."""
    slots = FileSlots(folder, 1, poll_s=0.005)
    queue = folder / "queue"
    served: list[float] = []
    lease = slots.acquire()
    threads = []
    for k, priority in enumerate(priorities):
        def wait(p: float = priority) -> None:
            with FileSlots(folder, 1, poll_s=0.005, priority=p):
                served.append(p)
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        deadline = time.monotonic() + 30
        while len([n for n in os.listdir(queue) if n.endswith(".wait")]) < k + 1:
            assert time.monotonic() < deadline, "a waiter never queued"
            time.sleep(0.005)
    lease.release()
    for t in threads:
        t.join(30)
    return served


def test_a_freed_slot_goes_to_the_waiting_call_with_the_most_work_behind_it(tmp_path: Path) -> None:
    # queued low, high, middle, higher: served by priority, not by arrival
    assert _served_in_order(tmp_path / "slots", [1.0, 9.0, 3.5, 40.0]) == [40.0, 9.0, 3.5, 1.0]


def test_equal_priorities_are_served_first_come_first_served(tmp_path: Path) -> None:
    assert _served_in_order(tmp_path / "slots", [2.0, 2.0 + 1e-9, 2.0, 2.0]) == [2.0, 2.0 + 1e-9, 2.0, 2.0]


def test_a_waiter_that_died_holds_no_one_up(tmp_path: Path) -> None:
    # a ticket at the head of the queue that no process holds (its waiter was killed)
    queue = tmp_path / "slots" / "queue"
    queue.mkdir(parents=True)
    dead = queue / f"{0:015d}-{0:020d}-999999-1.wait"
    dead.write_text("")
    FileSlots(tmp_path / "slots", 1).acquire(timeout_s=5).release()
    assert not dead.exists()


def test_a_slot_freed_in_this_process_wakes_its_waiter(tmp_path: Path) -> None:
    """The waiter would next look at the slot files in six minutes or more (poll_s of an
    hour): only the release's wake-up can hand it the slot within the test."""
    slots = FileSlots(tmp_path / "slots", 1, poll_s=3600)
    held = slots.acquire()
    waiting = threading.Event()
    got: list[int] = []

    def waiter() -> None:
        waiting.set()
        lease = slots.acquire()
        got.append(lease.index)
        lease.release()

    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    assert waiting.wait(60)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "slots" / "queue").glob("*.wait")):  # the waiter is queued
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.01)
    held.release()
    thread.join(120)
    assert got == [0]
