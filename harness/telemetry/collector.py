"""The collector: every sampler in its own thread, each at its own rate, into one JSONL stream.

It runs in a process of its own (`python -m harness.telemetry`, started by `TelemetryRecorder`)
so that neither the driver's CPU use and GIL delay a sample, nor the samplers the driver. Each
sampler is called at t0 + k·interval (a tick missed while a sample was slow is skipped, never
bunched); a sampler that raises writes one `error` record and stops, the others go on:

    {"kind": "error", "t": 3.2, "source": "host", "error": "RuntimeError: ..."}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from harness.samples import Clock
from harness.telemetry.gpu import GpuSampler
from harness.telemetry.health import HealthSeries
from harness.telemetry.host import HostSampler
from harness.telemetry.scrape import MetricsScraper
from harness.telemetry.store import Record


@dataclass(frozen=True)
class Rates:
    """Seconds between samples of each sampler: GPU ~10 Hz, host 2 Hz, /health and /metrics
    ~1 Hz."""

    gpu_s: float = 0.1
    host_s: float = 0.5
    health_s: float = 1.0
    metrics_s: float = 1.0


DEFAULT_RATES = Rates()


class Sampler(Protocol):
    kind: str

    def sample(self) -> list[Record]: ...


class Sink:
    """Writes records as JSON lines, one flushed line per record, from any thread."""

    def __init__(self, out: TextIO) -> None:
        import json

        self.out, self.dumps = out, json.dumps
        self.lock = threading.Lock()

    def __call__(self, record: Record) -> None:
        line = self.dumps(record, separators=(",", ":")) + "\n"
        with self.lock:
            self.out.write(line)
            self.out.flush()


def periodic(sampler: Sampler, interval_s: float, sink: Callable[[Record], None],
             stop: threading.Event, clock: Clock) -> None:
    """Call `sampler.sample()` every `interval_s` until `stop` is set."""
    t0 = time.monotonic()
    tick = 0
    while not stop.is_set():
        try:
            records = sampler.sample()
        except Exception as exc:  # a broken sampler must not end the others or the run
            sink({"kind": "error", "t": round(clock.now(), 6), "source": sampler.kind,
                  "error": f"{type(exc).__name__}: {exc}"})
            return
        for record in records:
            sink(record)
        tick = max(tick + 1, int((time.monotonic() - t0) / interval_s) + 1)
        stop.wait(max(0.0, t0 + tick * interval_s - time.monotonic()))


def collect(clock: Clock, sink: Callable[[Record], None], stop: threading.Event, *,
            url: str | None, target_pids: Sequence[int], driver_pid: int | None,
            exclude: Sequence[int] = (), rates: Rates = DEFAULT_RATES, nvml: Any = None,
            on_started: Callable[[], None] | None = None) -> None:
    """Sample until `stop` is set. Writes the `gpu_status` record first (available or why not),
    then the samplers' records as they come. Returns once every sampler thread has ended or
    been given up on (a /health probe waiting on a stalled server is not waited for)."""
    gpu = GpuSampler(clock, nvml)
    status = gpu.open()
    sink(status)
    roots = list(target_pids)
    plan: list[tuple[Sampler, float]] = []
    if status["available"]:
        plan.append((gpu, rates.gpu_s))
    plan.append((HostSampler(clock, lambda: roots, driver_pid, exclude), rates.host_s))
    if url:
        plan.append((HealthSeries(clock, url), rates.health_s))
        plan.append((MetricsScraper(clock, url), rates.metrics_s))
    threads = [threading.Thread(target=periodic, args=(s, i, sink, stop, clock), daemon=True,
                                name=f"telemetry-{s.kind}") for s, i in plan]
    try:
        for thread in threads:
            thread.start()
        if on_started is not None:
            on_started()
        while not stop.wait(0.25):
            pass
        for thread in threads:
            thread.join(timeout=1.0)
    finally:
        stop.set()
        gpu.close()
