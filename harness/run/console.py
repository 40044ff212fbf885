"""What a run prints while it runs: a status line of the running point every few seconds, and one
result line per finished point.

    [fastapi_batching c16]   7.5/10s measure sent 412 done 398 errors 0 tokens 25472
    [fastapi_batching c16] ok 398/398  TTFT p50 41 p99 87 ms  E2E p99 1204 ms  2210 tok/s

Nothing here changes what is measured; the lines go to the run's `out` (stderr by default).
"""

from __future__ import annotations

import threading
from typing import TextIO

from harness.drivers.job import LoadJob, Progress
from harness.summary.record import PointSummary


class ProgressPrinter:
    """Context manager: prints `line()` of the running load point every `interval_s`."""

    def __init__(self, out: TextIO, job: LoadJob, progress: Progress, interval_s: float) -> None:
        self.out, self.job, self.progress = out, job, progress
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def line(self) -> str:
        p, job = self.progress, self.job
        elapsed = job.clock.now() - job.point_start
        total = job.point.warmup_s + job.point.duration_s
        phase = "warm-up" if elapsed < job.point.warmup_s else "measure"
        return (f"  [{job.target} {job.point.name}] {min(elapsed, total):5.1f}/{total:.0f}s "
                f"{phase:7s} sent {p.sent} done {p.done} errors {p.errors} tokens {p.tokens}")

    def loop(self) -> None:
        while not self.stop.wait(self.interval_s):
            print(self.line(), file=self.out, flush=True)

    def __enter__(self) -> ProgressPrinter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def point_line(entry: PointSummary) -> str:
    """The result line of a finished point, from its summary.json entry ("—" where empty):
    `ok 71/72` requests completed of those sent, `died 0/3` when its target died in it."""
    req, ttft, e2e = entry.requests, entry.ttft_ms, entry.e2e_ms

    def f(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f}"

    status = "died" if entry.failure is not None else "ok"  # the target died during the point
    return (f"  [{entry.target} {entry.point}] {status} {req.ok}/{req.total}  "
            f"TTFT p50 {f(ttft.p50 if ttft else None)} p99 {f(ttft.p99 if ttft else None)} ms  "
            f"E2E p99 {f(e2e.p99 if e2e else None)} ms  {f(entry.throughput.output_tok_s)} tok/s")
