"""Probing a target's `GET /health` while a load point runs: the one module that does it.

`/health` answers without touching the model, so its latency under load measures how responsive
the server's event loop (or accept path) stays: the `fastapi_blocking` pitfall shows up here.
Every probe is one `check(endpoint, clock)`: a timed GET, sent at `t` on the run clock, whose
`Answer` is written in one of two record shapes by the two probers:

- the **event-loop probe** (`HealthProbe`): its own small process (`python -m harness.telemetry
  health`, so the driver's CPU use and GIL never delay it), at the scenario's
  `[client] probe_interval_s`, on one keep-alive connection, timeout 10 s. One JSON line per
  probe in `probes/<label>/<point>.jsonl`; `probe` in summary.json summarizes those sent in
  the measured window (`probe_summary`):

      {"t": 12.0, "ms": 1.9, "status": 200, "error": null}
      {"t": 12.5, "ms": null, "status": null, "error": "no answer within 10 s",
       "waited_ms": 10000.0, "censored": true, "missed": 19}

- the **telemetry series** (`HealthSeries`): a sampler of the telemetry collector, about once a
  second, on a fresh connection each time (as a load balancer's health check), timeout 5 s,
  drawn on the telemetry timeline beside GPU, CPU and queue depth:

      {"kind": "health", "t": 12.0, "latency_ms": 1.9, "status": 200, "error": null}
      {"kind": "health", "t": 13.0, "latency_ms": null, "status": null,
       "error": "no answer within 5 s", "waited_ms": 5000.0}

`ms` / `latency_ms` (milliseconds) is null when no 200 answer came; `error` says why: an HTTP
status, a refused connection, no answer within the timeout, or (event-loop probe) none before
the load ended. `waited_ms` is how long a probe that got no answer at all waited: exactly the
timeout when it timed out, so such a probe is *censored* (its latency is at least that), counted
at the timeout in the latency distribution rather than dropped (`"censored": true`; one cut short
by the load's end is censored at its wait; a refused connection is a failure, not censored).
Probes are sent at t0 + k·interval; ticks that passed while a probe waited on a slow answer are
skipped, and the record of that late probe says how many (`"missed": N`, absent when 0).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from harness.samples import Clock
from harness.summary.record import Distribution, ProbeSummary
from harness.telemetry.store import Record
from harness.telemetry.target_http import Endpoint

PROBE_TIMEOUT_S = 10.0  # the event-loop probe
HEALTH_TIMEOUT_S = 5.0  # the telemetry series
STOPPED = "no answer before the load ended"


class Stopped(Exception):
    """Raised by the probe process's SIGTERM handler, so a probe stuck on a stalled server
    ends at once (and is recorded as such)."""


@dataclass(frozen=True)
class Answer:
    """One probe: sent at `t` (run-clock s); `ms` latency of a 200 answer, else None."""

    t: float
    ms: float | None
    status: int | None
    error: str | None
    waited_ms: float | None = None  # set when no HTTP answer came at all (= timeout if it fired)
    stopped: bool = False  # the probe process was told to stop while waiting
    timed_out: bool = False  # no answer within the timeout

    @property
    def censored(self) -> bool:
        """No answer by the timeout or the load's end: the latency is at least `waited_ms`."""
        return self.waited_ms is not None and (self.timed_out or self.stopped)

    def probe_record(self, missed: int = 0) -> Record:
        """The event-loop probe's JSON line; `missed`: ticks skipped while this one waited."""
        record: Record = {"t": round(self.t, 6), "ms": _round(self.ms, 4),
                          "status": self.status, "error": self.error}
        if self.waited_ms is not None:
            record["waited_ms"] = round(self.waited_ms, 4)
        if self.censored:
            record["censored"] = True
        if missed:
            record["missed"] = missed
        return record

    def health_record(self) -> Record:
        """The telemetry series' `health` record (`waited_ms` when it timed out: censored)."""
        record: Record = {"kind": "health", "t": round(self.t, 6),
                          "latency_ms": _round(self.ms, 3), "status": self.status,
                          "error": self.error}
        if self.censored and self.waited_ms is not None:
            record["waited_ms"] = round(self.waited_ms, 3)
        return record


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def check(endpoint: Endpoint, clock: Clock) -> Answer:
    """GET `endpoint` once and time it."""
    sent = clock.now()
    begin = time.perf_counter()
    try:
        status, _ = endpoint.get()
    except (OSError, http.client.HTTPException, Stopped) as exc:
        waited_ms = (time.perf_counter() - begin) * 1000
        if isinstance(exc, Stopped):
            error = STOPPED
        elif isinstance(exc, TimeoutError):
            error = f"no answer within {endpoint.timeout_s:g} s"
            waited_ms = endpoint.timeout_s * 1000  # censored at the timeout
        else:
            error = f"{type(exc).__name__}: {exc}"
        return Answer(sent, None, None, error, waited_ms=waited_ms,
                      stopped=isinstance(exc, Stopped),
                      timed_out=isinstance(exc, TimeoutError))
    if status != 200:
        return Answer(sent, None, status, f"HTTP {status}")
    return Answer(sent, (time.perf_counter() - begin) * 1000, status, None)


class HealthSeries:
    """The telemetry sampler: one `check` of `base_url + path` per `sample()`."""

    kind = "health"

    def __init__(self, clock: Clock, base_url: str, path: str = "/health",
                 timeout_s: float = HEALTH_TIMEOUT_S,
                 headers: Mapping[str, str] | None = None) -> None:
        self.clock = clock
        self.endpoint = Endpoint(base_url, path, timeout_s, headers=headers)

    def sample(self) -> list[Record]:
        return [check(self.endpoint, self.clock).health_record()]


def probe_loop(base_url: str, interval_s: float, clock: Clock, out: IO[str],
               stop: threading.Event, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Probe until `stop` is set (or a probe is `Stopped`), one flushed line per probe; a tick
    that passed while a probe waited is skipped and counted on that probe's line."""
    endpoint = Endpoint(base_url, "/health", timeout_s, keep_alive=True)
    t0 = time.monotonic()
    tick = 0
    try:
        while not stop.is_set():
            answer = check(endpoint, clock)
            due = int((time.monotonic() - t0) / interval_s) + 1  # the next tick still ahead
            missed = max(0, due - (tick + 1))  # ticks that passed while this probe waited
            out.write(json.dumps(answer.probe_record(missed)) + "\n")
            out.flush()
            if answer.stopped:
                return
            tick = max(tick + 1, due)
            stop.wait(max(0.0, t0 + tick * interval_s - time.monotonic()))
    finally:
        endpoint.close()


class HealthProbe:
    """Context manager: the event-loop probe of `base_url + /health` every `interval_s`, in its
    own process, into the JSONL file `path`."""

    def __init__(self, base_url: str, interval_s: float, clock: Clock, path: Path) -> None:
        self.base_url, self.interval_s, self.clock, self.path = base_url, interval_s, clock, path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HealthProbe:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.telemetry", "health", self.base_url,
             "--interval", str(self.interval_s), "--origin-ns", str(self.clock.origin_ns),
             "--out", str(self.path)],
            stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self.process
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=PROBE_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_probes(path: Path) -> list[dict[str, Any]]:
    """The event-loop probe series of one point (empty when the file is missing)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def probe_summary(records: list[dict[str, Any]], since: float) -> ProbeSummary:
    """`probe` of summary.json over the probes sent at or after `since`: a probe that got no
    answer counts at the time it waited (censored: the true latency is at least that; the
    timeout itself for one that timed out), and `missed_ticks` sums the records' `missed`."""
    inside = [r for r in records if r.get("t", -1.0) >= since]
    answered = [float(r["ms"]) for r in inside if r.get("ms") is not None]
    censored = [float(r["waited_ms"]) for r in inside
                if r.get("ms") is None and r.get("censored") and r.get("waited_ms") is not None]
    return ProbeSummary(latency_ms=Distribution.of([*answered, *censored]), sent=len(inside),
                        answered=len(answered), censored=len(censored),
                        missed_ticks=sum(int(r.get("missed", 0)) for r in inside),
                        timeout_ms=PROBE_TIMEOUT_S * 1000)


def probe_main(argv: list[str] | None = None) -> None:
    """`python -m harness.telemetry health BASE_URL --interval S --origin-ns N --out FILE`."""
    parser = argparse.ArgumentParser(prog="python -m harness.telemetry health",
                                     description="the event-loop /health probe (see "
                                                 "harness.telemetry.health)")
    parser.add_argument("base_url")
    parser.add_argument("--interval", type=float, required=True, help="seconds between probes")
    parser.add_argument("--origin-ns", type=int, required=True, help="run clock origin")
    parser.add_argument("--out", required=True, help="JSONL file to append probes to")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        raise Stopped

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with open(args.out, "a", encoding="utf-8") as out, contextlib.suppress(Stopped):
        probe_loop(args.base_url, args.interval, Clock(args.origin_ns), out, stop)
