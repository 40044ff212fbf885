"""The runner's side of telemetry: a context manager around one load point.

    with TelemetryRecorder(clock, folder=run_dir / "telemetry", label="fastapi_batching",
                           point="c16", url=target.url, target_pids=[target.pid]) as rec:
        samples = driver.run(job, progress)
    records = rec.records                                  # this point's records, by time
    entry["telemetry"] = rec.summary(samples, warmup_end, load_end)  # summary.json part

Entering starts the collector process and returns at once: the driver is never held up, and
the first samples arrive once the collector has started (~0.5 s; 1–2 s on a busy machine),
inside the warm-up. Leaving stops it (SIGTERM), reads what it wrote and adds the point's span:

    {"kind": "point", "t": 10.0, "point": "c16", "start": 10.0, "warmup_end": 12.0, "end": 21.3}

Every record gets `"point": <name>`. The collector writes to a hidden partial file beside the
telemetry files; it is removed once read, and left in place if the run is interrupted first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from harness.metrics.requests import window_output_tokens
from harness.run.launcher import log_tail
from harness.samples import Clock, Sample
from harness.summary.record import PointTelemetry
from harness.telemetry.collector import DEFAULT_RATES, Rates
from harness.telemetry.store import Record, by_time, read_records
from harness.telemetry.summary import summarize_telemetry

STOP_TIMEOUT_S = 10.0


class TelemetryRecorder:
    """Samples GPU, host, /health and /metrics in a collector process while the block runs."""

    def __init__(self, clock: Clock, *, folder: Path, label: str, point: str, url: str | None,
                 target_pids: Sequence[int | None], driver_pid: int | None = None,
                 warmup_end: float | None = None, rates: Rates = DEFAULT_RATES,
                 log_path: Path | None = None) -> None:
        self.clock, self.label, self.point, self.url = clock, label, point, url
        self.warmup_end = warmup_end
        self.target_pids = [p for p in target_pids if p is not None]
        self.driver_pid = os.getpid() if driver_pid is None else driver_pid
        self.rates = rates
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{label}.{point}")
        self.part = folder / f".{safe}.partial"
        self.log_path = log_path or folder / f".{safe}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start = self.end = 0.0
        self.records: list[Record] = []

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "harness.telemetry", "--origin-ns",
                str(self.clock.origin_ns), "--out", str(self.part),
                "--driver-pid", str(self.driver_pid),
                "--gpu-interval", str(self.rates.gpu_s),
                "--host-interval", str(self.rates.host_s),
                "--health-interval", str(self.rates.health_s),
                "--metrics-interval", str(self.rates.metrics_s)]
        if self.url:
            argv += ["--url", self.url]
        for pid in self.target_pids:
            argv += ["--target-pid", str(pid)]
        return argv

    def __enter__(self) -> TelemetryRecorder:
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.part.unlink(missing_ok=True)
        self.start = self.clock.now()
        with self.log_path.open("ab") as log:
            try:
                self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=log, start_new_session=True)
            except OSError as exc:
                self.records.append(self._error(f"collector did not start: {exc}"))
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        code = self._stop()
        self.end = self.clock.now()  # after the collector stopped: its last record is inside
        records = read_records(self.part)
        if code not in (0, None, -signal.SIGTERM):
            records.append(self._error(f"collector exited with code {code}: "
                                       f"{log_tail(self.log_path, 5)}"))
        if not any(r.get("kind") == "gpu_status" for r in records):
            records.append({"kind": "gpu_status", "t": round(self.start, 6), "available": False,
                            "reason": "the telemetry collector recorded nothing", "devices": []})
        records.append({"kind": "point", "t": round(self.start, 6), "start": round(self.start, 6),
                        "warmup_end": None if self.warmup_end is None else round(
                            self.warmup_end, 6), "end": round(self.end, 6)})
        self.records = by_time([*self.records, *records])
        for record in self.records:
            record["point"] = self.point
        self.part.unlink(missing_ok=True)
        if self.log_path.exists() and self.log_path.stat().st_size == 0:
            self.log_path.unlink()

    def _stop(self) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def _error(self, text: str) -> Record:
        return {"kind": "error", "t": round(self.clock.now(), 6), "source": "collector",
                "error": text[-1000:]}

    def summary(self, samples: Sequence[Sample], warmup_end: float,
                load_end: float | None = None) -> PointTelemetry:
        """The point's `telemetry` object over the throughput window [warmup_end, load_end]
        (`harness.metrics`), cut at the end of recording when the load stopped first (^C);
        `tokens_per_j` takes the output tokens that arrived inside that same window."""
        end = self.end if load_end is None else min(load_end, self.end)
        return summarize_telemetry(self.records, start=warmup_end, end=end,
                                   output_tokens=window_output_tokens(samples, warmup_end, end))
