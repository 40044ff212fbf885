"""The fault a scenario's `[fault]` table injects during a load point, and what it did: a
SIGTERM to the target (`sigterm`) or clients abandoning streams (`disconnect`).

    watch = SigtermWatch(process, clock, lambda: progress.started_at or job.point_start, at_s,
                         on_exit=lambda reason: progress.fail(reason, clock.now()))
    with watch:
        ...  # the load; SIGTERM is sent `at_s` after the load began
    record = shutdown_summary(watch.signal_at, watch.exit_at, samples)

**sigterm** (a rolling restart): a thread sends SIGTERM to the target's process `at_s` into
the load, then waits for the process to exit (the drain; once the load ended, up to
`EXIT_WAIT_S`) and calls `on_exit` with a reason that starts with `EXPECTED`. An early end after
the signal (that exit, or the driver's error streak against the closed port) is no failure:
`harness.run.liveness` skips /health once the signal went out and names the exit expected. The
target is not restarted. From the samples: the requests in flight at the signal (sent before it,
not ended), how many completed vs were cut, and of those sent after it how many were refused
(503 `shutting_down`, or connection refused once the process was gone).

**disconnect**: clients abandon streams; how long the target takes to clean up, and
the tokens it generated that nobody read.

    cleanup = Cleanup.of(scenario.fault, target_urls(target), clock)
    cleanup.before()                        # the server's generated-token counter
    samples = driver.run(job, progress)     # the chosen streams close after N token chunks
    record = cleanup.after(samples)         # polls /metrics until idle; the `fault` record

The builtin driver closes the chosen streams (the job's `fault`; `abandon_after` in
`harness.drivers.builtin.streaming`; samples `abandoned`, `failed_at` = when). After the
point's load, `after` polls the target's `/metrics` every `POLL_S` (at most `WAIT_S`) until it
reads 0 requests in flight (`patternbench_in_flight`; vLLM's and llama.cpp's running + waiting,
`harness.telemetry.scrape`) and the generated-token counter has settled (two readings alike): a
target that noticed the client leave stopped generating for it; one that did not (a blocked
event loop) is still busy.
`in_flight_zero_after_s` counts from the last abandon, `..._after_load_s` from the load's end
(the last request ended on the client; in a closed loop streams read to the end finish after
the last abandon, so the load's end bounds how soon the target can be idle).

Wasted tokens: the counter (`patternbench_generated_tokens_total`, vLLM's
`vllm:generation_tokens_total`, llama.cpp's `llamacpp:tokens_predicted_total`) once idle minus
before the load, minus the output tokens the client read (every request of the point, the
abandoned streams' chunks included). A gateway's
upstream (`TargetProcess.gateway`) is read too and added: it is the one generating. No counter,
or one that counts fewer tokens than were read (a gateway without its upstream), gives null.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from harness.metrics.requests import ended_at
from harness.records.typed_json import FLOAT_DIGITS
from harness.run.launcher import TargetProcess
from harness.samples import Clock, Sample
from harness.scenario.fault import Fault
from harness.summary.fault import FaultSummary
from harness.telemetry.scrape import KEPT, parse_metrics, server_fields
from harness.telemetry.target_http import Endpoint

EXPECTED = "expected: SIGTERM by the fault"
TICK_S = 0.02
EXIT_WAIT_S = 90.0
"""After the load, how long the exit is waited for: a drain timeout (30 s by default) plus a
model server's own shutdown; past it the record says the target had not exited."""


class SigtermWatch:
    """Context manager: SIGTERM to `process` at `start() + at_s` (run clock), then its exit."""

    def __init__(self, process: subprocess.Popen[bytes] | None, clock: Clock,
                 start: Callable[[], float], at_s: float,
                 on_exit: Callable[[str], None]) -> None:
        self.process, self.clock, self.start, self.at_s = process, clock, start, at_s
        self.on_exit = on_exit
        self.signal_at: float | None = None
        self.exit_at: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="patternbench-fault", daemon=True)

    @classmethod
    def of(cls, fault: Fault | None, process: subprocess.Popen[bytes] | None, clock: Clock,
           start: Callable[[], float], on_exit: Callable[[str], None]) -> SigtermWatch | None:
        """The watch for a sigterm `fault` (None for no fault or another kind)."""
        if fault is None or fault.kind != "sigterm":
            return None
        return cls(process, clock, start, fault.at_s, on_exit)

    @property
    def signalled(self) -> bool:
        return self.signal_at is not None

    def __enter__(self) -> SigtermWatch:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.signalled and et is None:  # the load may end first (its error streak): the
            self.thread.join(EXIT_WAIT_S)  # drain is measured to the exit all the same
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        process = self.process
        if process is None:  # an external server: nothing to signal
            return
        while self.clock.now() < self.start() + self.at_s:
            if self.stop.wait(TICK_S):
                return
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        self.signal_at = self.clock.now()
        while (code := process.poll()) is None:
            if self.stop.wait(TICK_S):
                return
        self.exit_at = self.clock.now()
        self.on_exit(f"{EXPECTED}; the target process exited with code {code}")


def expected_end(fault: FaultSummary | None, abort_at: float | None) -> bool:
    """Whether a point's early end came after the fault's signal (the target's exit is due)."""
    at = fault.signal_at_s if fault is not None else None
    return at is not None and abort_at is not None and abort_at >= at


def _ended(sample: Sample) -> float | None:
    return sample.done_at if sample.done_at is not None else sample.failed_at


def refused(sample: Sample) -> bool:
    """Refused by a draining server (503) or by no server at all (connection refused)."""
    return sample.status in ("refused", "conn_error") or sample.http_status == 503


def shutdown_summary(signal_at: float | None, exit_at: float | None,
                     samples: Sequence[Sample]) -> FaultSummary:
    """The sigterm fault's record (see the module docstring)."""
    # The record is written with FLOAT_DIGITS decimals; rounding the two instants first keeps
    # drain_s exactly their difference as read back (rounding all three apart can differ by 1e-4).
    signal_at, exit_at = (None if t is None else round(t, FLOAT_DIGITS)
                          for t in (signal_at, exit_at))
    at = signal_at if signal_at is not None else float("inf")
    in_flight = [s for s in samples if s.sent_at <= at
                 and ((end := _ended(s)) is None or end > at)]
    after = [s for s in samples if s.sent_at > at]
    drain = (round(exit_at - signal_at, FLOAT_DIGITS)
             if exit_at is not None and signal_at is not None else None)
    return FaultSummary(kind="sigterm", signal_at_s=signal_at, exit_at_s=exit_at,
                        drain_s=drain, in_flight_at_signal=len(in_flight),
                        completed=sum(s.ok for s in in_flight),
                        cut=sum(not s.ok for s in in_flight), sent_after=len(after),
                        refused_after=sum(refused(s) for s in after))


# disconnect: the clean-up after clients abandoned streams

POLL_S = 0.05  # between two /metrics readings after the load
WAIT_S = 10.0  # the longest the target is waited for to be idle
SCRAPE_TIMEOUT_S = 5.0
TOKEN_COUNTERS = frozenset({"patternbench_generated_tokens_total", "vllm:generation_tokens_total",
                            "llamacpp:tokens_predicted_total"})


@dataclass(frozen=True)
class Reading:
    """One reading of every endpoint's /metrics at `t` (run clock): requests in flight and the
    generated-token counter, summed; None where one endpoint did not tell."""

    t: float
    in_flight: float | None
    generated: float | None
    source: str | None = None  # the target's metric names: patternbench, vllm, llamacpp
    answered: bool = True  # every scrape answered 200 (a None above is then "not exported")


def target_urls(target: TargetProcess) -> list[str]:
    """The target's base URL, and a gateway's upstream after it."""
    return [target.url, *([target.gateway.url] if target.gateway is not None else [])]


def read(endpoints: Sequence[Endpoint], clock: Clock) -> Reading:
    """One reading of `endpoints` (the first is the target's own)."""
    flights: list[float | None] = []
    counters: list[float] = []
    source, answered = None, True
    for k, endpoint in enumerate(endpoints):
        try:
            status, body = endpoint.get()
            values = parse_metrics(body.decode("utf-8", "replace"), KEPT | TOKEN_COUNTERS)
        except (OSError, http.client.HTTPException, ValueError):
            status, values = 0, {}
        answered = answered and status == 200
        fields = server_fields(values) if status == 200 else {}
        flights.append(fields.get("in_flight"))
        counters += [values[name] for name in TOKEN_COUNTERS if name in values]
        if k == 0:
            source = fields.get("source")
    in_flight = None if any(f is None for f in flights) else sum(f for f in flights if f)
    return Reading(t=round(clock.now(), 6), in_flight=in_flight,
                   generated=sum(counters) if counters else None, source=source,
                   answered=answered)


class Cleanup:
    """Reads the target's counters before the load and waits for it to be idle after it."""

    def __init__(self, fault: Fault, urls: Sequence[str], clock: Clock, wait_s: float = WAIT_S,
                 poll_s: float = POLL_S) -> None:
        self.fault, self.clock, self.wait_s, self.poll_s = fault, clock, wait_s, poll_s
        self.endpoints = [Endpoint(url, "/metrics", SCRAPE_TIMEOUT_S) for url in urls]
        self.start: Reading | None = None

    @classmethod
    def of(cls, fault: Fault | None, urls: Sequence[str], clock: Clock) -> Cleanup | None:
        """The clean-up watch for a disconnect `fault` (None for no fault or another kind)."""
        if fault is None or fault.kind != "disconnect":
            return None
        return cls(fault, urls, clock)

    def before(self) -> None:
        """Read the generated-token counter before the load."""
        self.start = read(self.endpoints, self.clock)

    def after(self, samples: Sequence[Sample], poll: bool = True) -> FaultSummary:
        """Wait (`poll`; not after ^C or a dead target) until the target is idle; the record."""
        readings = self.wait_idle() if poll else []
        return disconnect_summary(self.fault, samples, self.start, readings, self.wait_s)

    def wait_idle(self) -> list[Reading]:
        """Readings every `poll_s` until 0 in flight and the counter settled, or `wait_s`."""
        deadline = self.clock.now() + self.wait_s
        readings = [read(self.endpoints, self.clock)]
        while not _idle(readings) and self.clock.now() < deadline:
            last = readings[-1]
            if last.answered and last.in_flight is None:
                break  # in flight is not exported: nothing to wait for
            time.sleep(self.poll_s)
            readings.append(read(self.endpoints, self.clock))
        return readings


def _idle(readings: Sequence[Reading]) -> bool:
    """0 in flight in the last two readings, with the same token counter."""
    if len(readings) < 2:
        return False
    a, b = readings[-2], readings[-1]
    return a.in_flight == 0 and b.in_flight == 0 and a.generated == b.generated


def received(sample: Sample) -> int:
    """Output tokens the client read: the usage count, or the token chunks it read (a stream
    abandoned or cut, whose count was never set)."""
    return max(sample.output_tokens, len(sample.token_times))


def disconnect_summary(fault: Fault, samples: Sequence[Sample], start: Reading | None,
                       readings: Sequence[Reading], wait_s: float) -> FaultSummary:
    """The disconnect fault's record (see the module docstring)."""
    gone = [s for s in samples if s.status == "abandoned"]
    # Instants rounded to the record's precision first: the spans are their differences as
    # read back (see `harness.run.fault.shutdown_summary`).
    last_abandon = _at(max((s.failed_at for s in gone if s.failed_at is not None), default=None))
    load_end = _at(max((ended_at(s) for s in samples), default=None))
    zero = _at(next((r.t for r in readings if r.in_flight == 0), None))
    last = next((r.generated for r in reversed(readings) if r.generated is not None), None)
    first = start.generated if start is not None else None
    generated = round(last - first) if last is not None and first is not None else None
    read_tokens = sum(received(s) for s in samples)
    wasted = (generated - read_tokens if generated is not None and generated >= read_tokens
              else None)
    known = [r.in_flight for r in readings if r.in_flight is not None]
    return FaultSummary(
        kind="disconnect", completed=sum(s.ok for s in samples), after_tokens=fault.after_tokens,
        requests=len(samples), abandoned=len(gone), last_abandon_at_s=last_abandon,
        load_end_at_s=load_end, cleanup_wait_s=wait_s,
        metrics_source=next((r.source for r in readings if r.source), None),
        in_flight_zero_at_s=zero, in_flight_zero_after_s=_since(last_abandon, zero),
        in_flight_zero_after_load_s=_since(load_end, zero),
        in_flight_left=known[-1] if known else None, generated_tokens=generated,
        received_tokens=read_tokens, wasted_tokens=wasted,
        wasted_per_abandoned=wasted / len(gone) if wasted is not None and gone else None)


def _at(t: float | None) -> float | None:
    return None if t is None else round(t, FLOAT_DIGITS)


def _since(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, FLOAT_DIGITS)
