"""What the runner notes around a driver run: driver-bound flag, driver stats, probe latency."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from harness.drivers.builtin.shares import Share
from harness.drivers.job import LoadJob, Progress
from harness.metrics import summarize
from harness.point import PointWatch, WatchNotes, run_label
from harness.samples import Clock, Sample
from harness.scenario import ClientSettings, LoadPoint, Workload
from harness.summary import PointMetrics
from harness.telemetry.health import HealthProbe, probe_summary, read_probes

POINT = LoadPoint("r5", "constant", duration_s=4, warmup_s=1, rate_rps=5)


def job() -> LoadJob:
    return LoadJob(target="t", base_url="http://127.0.0.1:1", model_name="m", point=POINT,
                   workload=Workload(), prompts=None,  # type: ignore[arg-type]  # unused here
                   clock=Clock(), point_start=10.0, seed=1)


def sent_late(lag_ms: float) -> PointMetrics:
    """The metrics of open-loop requests each sent `lag_ms` after it was due (a busy driver)."""
    samples = [Sample(request_id=str(i), target="t", point="r5", scheduled_at=11.0 + 0.2 * i,
                      sent_at=11.0 + 0.2 * i + lag_ms / 1000, status="ok",
                      first_byte_at=11.1 + 0.2 * i, done_at=11.15 + 0.2 * i, output_tokens=4)
               for i in range(10)]
    return summarize(samples, warmup_end=11.0)


def test_a_point_over_the_dispatch_lag_bound_is_flagged_driver_bound(tmp_path: Path) -> None:
    watch = PointWatch(job(), ClientSettings(max_dispatch_lag_ms=10, probe_interval_s=0),
                       tmp_path / "p.jsonl")
    progress = Progress(flags=["no_token_timing"], stats={"dropped_iterations": 3})
    slow = watch.notes(sent_late(12.5), progress)
    assert slow == WatchNotes(flags=("no_token_timing", "driver_bound"), max_dispatch_lag_ms=10,
                              driver_stats={"dropped_iterations": 3}, probe_ms=None)
    fine = watch.notes(sent_late(9.9), Progress())
    assert fine == WatchNotes(flags=(), max_dispatch_lag_ms=10, driver_stats=None,
                              probe_ms=None)
    assert watch.notes(summarize([]), Progress()).flags == ()


def test_warm_up_counts_from_when_the_driver_really_started(tmp_path: Path) -> None:
    watch = PointWatch(job(), ClientSettings(), tmp_path / "p.jsonl")
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
    assert summary is not None and (summary.count, summary.max) == (2, 4.0)
    assert probe_summary([], since=0.0) is None
    watch = PointWatch(job(), ClientSettings(probe_interval_s=0.5), path)
    assert watch.notes(summarize([]), Progress()).probe_ms == summary


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
