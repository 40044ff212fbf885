"""What the runner notes around a driver run: driver-bound flag, driver stats, probe latency."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from harness.drivers.builtin.loop_lag import LoopLag
from harness.drivers.builtin.shares import Share
from harness.drivers.job import LoadJob, Progress
from harness.drivers.k6.driver import note_summary
from harness.metrics.requests import summarize
from harness.run.point import PointWatch, WatchNotes, run_label
from harness.samples import Clock, Sample
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint
from harness.summary.record import PointMetrics
from harness.telemetry.health import HealthProbe, probe_summary, read_probes
from harness.telemetry.summary import summarize_telemetry
from tests.jobs import job_for

POINT = LoadPoint("r5", "constant", duration_s=4, warmup_s=1, rate_rps=5)


def job(client: ClientSettings | None = None) -> LoadJob:
    return job_for(POINT, client=client, point_start=10.0)


def sent_late(lag_ms: float) -> PointMetrics:
    """The metrics of open-loop requests each sent `lag_ms` after it was due (a busy driver)."""
    samples = [Sample(request_id=str(i), target="t", point="r5", scheduled_at=11.0 + 0.2 * i,
                      sent_at=11.0 + 0.2 * i + lag_ms / 1000, status="ok",
                      first_byte_at=11.1 + 0.2 * i, done_at=11.15 + 0.2 * i, output_tokens=4)
               for i in range(10)]
    return summarize(samples, warmup_end=11.0)


def test_a_point_over_the_dispatch_lag_bound_is_flagged_driver_bound(tmp_path: Path) -> None:
    watch = PointWatch(job(ClientSettings(max_dispatch_lag_ms=10, probe_interval_s=0)),
                       tmp_path / "p.jsonl")
    progress = Progress(flags=["no_token_timing"])
    (tmp_path / "k6-summary.json").write_text(json.dumps({"dropped_iterations": 3}))
    note_summary(progress, tmp_path / "k6-summary.json")  # what the k6 driver does with it
    progress.cpu_capacity_pct = None
    slow = watch.notes(sent_late(12.5), progress)
    assert slow == WatchNotes(flags=("no_token_timing", "driver_bound", "dropped"),
                              max_dispatch_lag_ms=10, driver_stats={"dropped_iterations": 3},
                              probe=None, dropped=3)
    fine = watch.notes(sent_late(9.9), Progress())
    assert fine == WatchNotes(flags=(), max_dispatch_lag_ms=10, driver_stats=None,
                              probe=None)
    assert watch.notes(summarize([]), Progress()).flags == ()


def test_warm_up_counts_from_when_the_driver_really_started(tmp_path: Path) -> None:
    watch = PointWatch(job(), tmp_path / "p.jsonl")
    assert watch.warmup_end(Progress()) == 11.0
    assert watch.warmup_end(Progress(started_at=13.0)) == 14.0


def test_probe_ms_counts_answered_probes_of_the_measured_window(tmp_path: Path) -> None:
    rows = [{"t": 10.5, "ms": 100.0, "status": 200, "error": None},
            {"t": 11.5, "ms": 2.0, "status": 200, "error": None},
            {"t": 12.0, "ms": None, "status": None, "error": "no answer before the load ended"},
            {"t": 12.5, "ms": 4.0, "status": 200, "error": None}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = probe_summary(read_probes(path), since=11.0)
    assert (summary.sent, summary.answered, summary.censored) == (3, 2, 0)
    assert summary.latency_ms is not None and summary.latency_ms.max == 4.0
    assert probe_summary([], since=0.0).latency_ms is None
    watch = PointWatch(job(ClientSettings(probe_interval_s=0.5)), path)
    assert watch.notes(summarize([]), Progress()).probe == summary


def test_labels_and_shares() -> None:
    assert run_label("sim", "k6", ["builtin", "k6"]) == "sim@k6"
    assert run_label("sim", "k6", ["k6"]) == "sim"
    shares = [Share(k, 3) for k in range(3)]
    assert [s.part(8) for s in shares] == [3, 3, 2]
    assert [next(iter(s.indices())) for s in shares] == [0, 1, 2]
    it = shares[1].indices()
    assert [next(it) for _ in range(3)] == [1, 4, 7]


def test_a_probe_stuck_on_a_silent_server_is_recorded_when_the_load_ends(
        tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(30)
    port = listener.getsockname()[1]
    path = tmp_path / "probes.jsonl"
    with HealthProbe(f"http://127.0.0.1:{port}", 0.1, Clock(), path):
        conn, _ = listener.accept()  # the probe connected and now waits for an answer
    conn.close()
    listener.close()
    (record,) = read_probes(path)
    assert (record["ms"], record["status"]) == (None, None)
    assert record["error"] == "no answer before the load ended"
    assert record["waited_ms"] >= 0


def loop_lag_of(busy_ms: float, run_s: float = 0.4) -> list[tuple[float, float]]:
    """Readings of `LoopLag` on a real loop for `run_s`, while a callback keeps the loop busy
    `busy_ms` at a time (0: an idle loop)."""
    readings: list[tuple[float, float]] = []

    def hog(loop: asyncio.AbstractEventLoop) -> None:
        end = time.perf_counter() + busy_ms / 1000
        while time.perf_counter() < end:
            pass  # CPU-bound work on the loop's thread: parsing, too many streams, ...
        loop.call_later(0.002, hog, loop)

    async def main() -> None:
        async with LoopLag(Clock(), readings):
            if busy_ms:
                hog(asyncio.get_running_loop())
            await asyncio.sleep(run_s)

    asyncio.run(main())
    return readings


@pytest.mark.slow  # keeps a driver loop busy for about a second: make test, not test-fast
def test_a_busy_driver_loop_is_measured_and_flagged_in_closed_loop(tmp_path: Path) -> None:
    closed = job_for(LoadPoint("c4", "closed", duration_s=4, warmup_s=0, concurrency=4),
                     client=ClientSettings(max_dispatch_lag_ms=10, probe_interval_s=0),
                     point_start=0.0)
    watch = PointWatch(closed, tmp_path / "p.jsonl")
    busy = watch.notes(summarize([]), Progress(loop_lag=loop_lag_of(busy_ms=30)))
    assert busy.driver_loop_lag_ms is not None and busy.driver_loop_lag_ms.p99 > 10
    assert busy.flags == ("driver_bound",)
    idle = watch.notes(summarize([]), Progress(loop_lag=loop_lag_of(busy_ms=0)))
    assert idle.driver_loop_lag_ms is not None and idle.driver_loop_lag_ms.count >= 10
    assert idle.driver_loop_lag_ms.p99 < 10 and idle.flags == ()
    assert watch.notes(summarize([]), Progress()).driver_loop_lag_ms is None


def test_a_driver_near_a_full_core_is_flagged_driver_bound(tmp_path: Path) -> None:
    watch = PointWatch(job(ClientSettings(probe_interval_s=0)), tmp_path / "p.jsonl")

    def cpu(*pcts: float) -> Any:
        return summarize_telemetry([{"kind": "host", "t": 11.0 + 0.5 * i, "driver_cpu_pct": p}
                                    for i, p in enumerate(pcts)], start=11.0, end=15.0)

    one_core = Progress(cpu_capacity_pct=100.0)  # one builtin driver process
    assert watch.notes(summarize([]), one_core, cpu(97, 99, 93, 40)).flags == ("driver_bound",)
    assert watch.notes(summarize([]), one_core, cpu(60, 85, 70)).flags == ()
    two = Progress(cpu_capacity_pct=200.0)  # two processes: 99% is half their capacity
    assert watch.notes(summarize([]), two, cpu(97, 99, 93)).flags == ()
    assert watch.notes(summarize([]), Progress(), cpu(99, 99)).flags == ()  # not judged


def test_a_flag_the_driver_raised_itself_is_not_repeated(tmp_path: Path) -> None:
    watch = PointWatch(job(ClientSettings(probe_interval_s=0)), tmp_path / "p.jsonl")
    locust_like = Progress(flags=["dropped"], dropped=2)  # locust flags its own never-sent
    notes = watch.notes(summarize([]), locust_like)
    assert (notes.flags, notes.dropped) == (("dropped",), 2)


def test_the_probe_counts_timeouts_censored_at_the_timeout_and_refusals_as_failures(
        tmp_path: Path) -> None:
    """Records as `probe_loop` writes them: a timeout (censored, with the ticks it missed) and a
    refused connection (waited, but not censored: the server was not there to answer)."""
    rows = [{"t": 11.0, "ms": 2.0, "status": 200, "error": None},
            {"t": 11.5, "ms": None, "status": None, "error": "no answer within 10 s",
             "waited_ms": 10000.0, "censored": True, "missed": 19},
            {"t": 21.5, "ms": None, "status": None,
             "error": "ConnectionRefusedError: [Errno 111] Connection refused",
             "waited_ms": 0.2}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    watch = PointWatch(job(ClientSettings(probe_interval_s=0.5)), path)
    probe = watch.notes(summarize([]), Progress()).probe
    assert probe is not None
    assert (probe.sent, probe.answered, probe.censored, probe.missed_ticks) == (3, 1, 1, 19)
    assert probe.latency_ms is not None and probe.latency_ms.max == 10000.0
    assert probe.latency_ms.count == 2
