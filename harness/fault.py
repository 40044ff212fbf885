"""The fault a scenario's `[fault]` table injects during a load point, and what it did.

    watch = SigtermWatch(process, clock, lambda: progress.started_at or job.point_start, at_s,
                         on_exit=lambda reason: progress.fail(reason, clock.now()))
    with watch:
        ...  # the load; SIGTERM is sent `at_s` after the load began
    record = shutdown_summary(watch.signal_at, watch.exit_at, samples)

**sigterm** (a rolling restart): a thread sends SIGTERM to the target's process `at_s` into
the load, then waits for the process to exit (the drain; once the load ended, up to
`EXIT_WAIT_S`) and calls `on_exit` with a reason that starts with `EXPECTED`. An early end after
the signal (that exit, or the driver's error streak against the closed port) is no failure:
`harness.liveness` skips /health once the signal went out and names the exit expected. The
target is not restarted. From the samples: the requests in flight at the signal (sent before it,
not ended), how many completed vs were cut, and of those sent after it how many were refused
(503 `shutting_down`, or connection refused once the process was gone).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from harness.samples import Clock, Sample
from harness.scenario_fault import Fault
from harness.summary_fault import FaultSummary
from harness.typed_json import FLOAT_DIGITS

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
