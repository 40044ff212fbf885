"""The sim model's time: `gil="hold"` is a fixed amount of work, as real computation is."""

from __future__ import annotations

import threading
import time

from targets.model.sim import sim_wait

WORK_S = 0.03


def test_holding_the_gil_spends_its_seconds_as_cpu_work_even_while_threads_contend() -> None:
    # Four threads compute at once and take turns with the GIL; each must still do all of its
    # work (a wall-clock deadline would let a thread that waited for the GIL do only a part).
    used: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        before = time.thread_time()
        sim_wait(WORK_S, "hold")
        with lock:
            used.append(time.thread_time() - before)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(used) == 4 and min(used) >= WORK_S


def test_releasing_the_gil_uses_almost_no_cpu() -> None:
    before = time.thread_time()
    sim_wait(WORK_S, "release")
    assert time.thread_time() - before < WORK_S / 2
