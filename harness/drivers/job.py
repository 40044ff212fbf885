"""What a driver is given and what it hands back: `LoadJob` in; `Progress` and samples out.

A driver must stamp every time on `job.clock` (seconds since the run's origin), report in
`progress` what the runner must store with the point (`started_at`, `flags`, `stats`), and keep
the samples it gathered if interrupted: it raises `DriverInterrupted` carrying them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.arrivals import Arrival, plan
from harness.samples import Clock, Sample
from harness.scenario.client import ClientSettings
from harness.scenario.fault import Fault
from harness.scenario.types import LoadPoint, Workload
from harness.workload.prompts import PromptFactory

MAX_AUTO_CONNECTIONS = 1024  # `connections = 0` sizes an open-loop point to its schedule, to this


def closed_starts(point: LoadPoint) -> list[float]:
    """When each of a closed loop's N streams sends its first request, s after the point's
    start: stream k at k·ramp_up_s/N (`LoadPoint.ramp_up_s`), so N equal streams do not move
    in lock-step waves. Empty for an open-loop point.

        >>> closed_starts(LoadPoint("c4", "closed", 8, 2, concurrency=4))  # ramp 1 s
        [0.0, 0.25, 0.5, 0.75]
    """
    if point.kind != "closed" or not point.concurrency:
        return []
    n = point.concurrency
    return [k * point.ramp_up_s / n for k in range(n)]


@dataclass(frozen=True)
class LoadJob:
    """One load point against one target: everything a driver needs, nothing from the CLI.

    `client` is the scenario's `[client]` table with the target's own `client` knobs over it
    (`TargetConfig.effective_client`): connection cap, driver processes, the connect /
    first-token / between-tokens timeouts and the 503 retries. `fault` is the scenario's
    `[fault]` (None: none); a driver acts on the kinds it runs (the builtin driver abandons
    streams for a `disconnect`) and leaves the rest to the point (`harness.run.fault`).
    """

    target: str  # label used in samples and reports
    base_url: str  # e.g. http://127.0.0.1:8123
    model_name: str  # the `model` field sent in request bodies
    point: LoadPoint
    workload: Workload
    prompts: PromptFactory
    clock: Clock
    point_start: float  # run-clock time at which this point's load starts
    seed: int
    timeout_s: float = 300.0  # a whole request, send to done
    api_key: str | None = None
    client: ClientSettings = field(default_factory=ClientSettings)
    fault: Fault | None = None
    work_dir: Path | None = None  # where k6/locust keep their scripts and raw output
    prompt_offset: int = 0  # the point's first run-wide prompt index (`PromptFactory.next_block`)

    @property
    def warmup_end(self) -> float:
        return self.point_start + self.point.warmup_s

    @property
    def load_end(self) -> float:
        return self.point_start + self.point.warmup_s + self.point.duration_s

    @property
    def hard_end(self) -> float:
        """With `min_requests`: the latest the load may run (`max_duration_s` of window)."""
        if not self.point.min_requests:
            return self.load_end
        return self.warmup_end + max(self.point.max_duration_s, self.point.duration_s)

    def load_over(self, now: float, measured: int, wanted: int | None = None) -> bool:
        """Whether a loop must stop sending at `now` (run clock), having sent `measured` requests
        after warm-up of the `wanted` it must send (default `point.min_requests`; a driver
        process passes its share): past `load_end` with enough of them, or past `hard_end`."""
        need = self.point.min_requests if wanted is None else wanted
        return now >= self.hard_end or (now >= self.load_end and measured >= need)

    def arrivals(self) -> list[Arrival] | None:
        """The point's open-loop schedule (None: closed loop). With `min_requests`, planned up to
        `max_duration_s` and cut at `duration_s` or at the `min_requests`-th arrival after
        warm-up, whichever is later: the schedule itself meets the minimum when it can."""
        point = self.point
        if not point.min_requests:
            return plan(point, self.seed)
        longest = max(point.max_duration_s, point.duration_s)
        full = plan(replace(point, duration_s=longest), self.seed)
        if full is None:
            return None
        warm = [a for a in full if a.offset_s < point.warmup_s]
        measured = [a for a in full if a.offset_s >= point.warmup_s]
        window = point.warmup_s + point.duration_s
        keep = max(sum(1 for a in measured if a.offset_s < window), point.min_requests)
        return warm + measured[:keep]


@dataclass
class Progress:
    """Live counters a driver updates (the runner prints them), and what the driver tells the
    runner about its own run, stored with the point in summary.json.

    `started_at`: run-clock time the load really began, when a driver had to boot a tool first
    (None = `job.point_start`); warm-up is counted from it. `flags`: point flags such as
    `no_token_timing`. `stats`: the tool's own counters (`dropped_iterations`, ...).
    `dropped`: arrivals the driver never sent (None = it cannot tell); any makes the point
    `dropped`. `loop_lag`: `(t, lag_ms)` readings of the driver's own event loop (how late a
    periodic timer woke, stamped at run-clock `t`; every driver process's, merged; see
    `harness.drivers.builtin.loop_lag`). `cpu_capacity_pct`: the CPU the driver's load loop can use
    (100 per core it can run on; None = not judged), against which `driver.cpu_pct` is read.
    `abort`: set (by the point's `harness.run.liveness` watch or the driver's `ErrorStreak`) to the
    reason the target is dead (`abort_at`: when, run clock; both set once, by `fail`); a driver
    that sees it stops sending and ends the point early (k6 and locust are stopped by
    `wait_stopping_on_abort`). `end_at`: set by a fault whose experiment is over (a rolling
    deploy, `harness.run.rolling`) to the run-clock time the load ends early, as planned: the
    builtin driver sends nothing from then on and lets the requests in flight finish.
    """

    sent: int = 0
    done: int = 0
    errors: int = 0
    tokens: int = 0
    started_at: float | None = None
    flags: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    dropped: int | None = None
    loop_lag: list[tuple[float, float]] = field(default_factory=list)
    cpu_capacity_pct: float | None = None
    abort: str | None = None
    abort_at: float | None = None
    end_at: float | None = None

    def ended(self, now: float) -> bool:
        """Whether the load was ended early by plan (`end_at`) by `now` (run clock)."""
        return self.end_at is not None and now >= self.end_at

    def fail(self, reason: str, at: float) -> None:
        """Declare the target dead at `at` (run clock) for `reason`; the first call wins."""
        if self.abort is None:
            self.abort_at, self.abort = at, reason


class DriverInterrupted(Exception):
    """Raised by a driver that was interrupted; `samples` holds what it measured until then."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        super().__init__("load interrupted")
        self.samples = list(samples)


def wait_stopping_on_abort(proc: subprocess.Popen[bytes], progress: Progress, stop_signal: int,
                           poll_s: float = 0.1,
                           each_poll: Callable[[], None] | None = None) -> bool:
    """Wait for a load tool's process (k6, locust's master), calling `each_poll` every `poll_s`
    while it runs; once `progress.abort` is set (the target is dead), send it `stop_signal` once
    — its graceful stop, after which it writes what it measured — and go on waiting. True when
    it was stopped that way."""
    stopped = False
    while True:
        try:
            proc.wait(timeout=poll_s)
            return stopped
        except subprocess.TimeoutExpired:
            pass
        if each_poll is not None:
            each_poll()
        if progress.abort is not None and not stopped:
            proc.send_signal(stop_signal)
            stopped = True
