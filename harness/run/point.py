"""One load point against one running target: driver → samples → metrics, and what it must not
hide.

    result = run_point(ctx, tc, target, point, "builtin")
    result.entry        # the point's summary.json entry (assembled in `point_entry` only)
    result.interrupted  # ^C during the load: the samples until then are kept and stored

Around the driver's run (`PointWatch`): the driver pinned to `cpu_affinity.driver`, the
event-loop `/health` probe (`harness.telemetry.health`) and the telemetry collector; afterwards
the samples and telemetry are stored in the run folder and the entry is assembled. A point
whose p99 dispatch lag (sent − scheduled) passes `client.max_dispatch_lag_ms` is flagged
`driver_bound`: the load generator, not the target, set its pace, so its latency is suspect.
So is one whose driver's own event-loop lag (`progress.loop_lag` of the measured window, as
`driver_loop_lag_ms`) has a p99 past that bound, or whose driver tree's median CPU
(`telemetry.driver.cpu_pct.p50`) reaches `CPU_BOUND_SHARE` of what its load loop can use
(`progress.cpu_capacity_pct`: one core per builtin process): in a closed loop dispatch lag is ~0
by construction, and these two still see a saturated driver. Arrivals the driver never sent
(`progress.dropped`, k6's dropped iterations) become `dropped` and, when any, the `dropped` flag.
A target declared dead during the load (`harness.run.liveness`: its process exited or /health
failed; or the driver's error streak) ends the point early, flagged `target_failed`, with its
`failure`; the runner then skips that target's later points. A `[fault]` sigterm
(`harness.run.fault`) ends the point when the target exits, expected: no `failure`, a `fault`
record. A `[fault]` disconnect (`harness.run.fault`) has the driver abandon streams; after the
load the point waits (at most 10 s) for the target to be idle, and records it in `fault`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from harness.drivers import get_driver
from harness.drivers.job import DriverInterrupted, LoadJob, Progress
from harness.metrics.requests import summarize
from harness.metrics.rolling import rolling_summary
from harness.metrics.spike import spike_summary
from harness.run.console import ProgressPrinter
from harness.run.fault import Cleanup, SigtermWatch, expected_end, shutdown_summary, target_urls
from harness.run.folder import RunDir
from harness.run.launcher import TargetProcess
from harness.run.liveness import Liveness, point_failure
from harness.run.rolling import RollingDeploy
from harness.samples import Clock, Sample, write_samples
from harness.scenario.types import LoadPoint, Scenario, TargetConfig
from harness.summary.fault import FaultSummary
from harness.summary.record import (
    Distribution,
    PointFailure,
    PointMetrics,
    PointSummary,
    PointTelemetry,
    ProbeSummary,
    ProxyPool,
)
from harness.telemetry.health import HealthProbe, probe_summary, read_probes
from harness.telemetry.pool import PoolTotals, pool_point, read_pool_totals
from harness.telemetry.recorder import TelemetryRecorder
from harness.telemetry.store import append_records
from harness.workload.prompts import PromptFactory


@dataclass(frozen=True)
class RunContext:
    """What every point of a run shares."""

    run: RunDir
    scenario: Scenario
    prompts: PromptFactory
    clock: Clock
    out: TextIO  # where the progress lines go
    progress_interval_s: float = 2.0


@dataclass(frozen=True)
class PointResult:
    entry: PointSummary
    samples: list[Sample]
    interrupted: bool = False

    @property
    def failure(self) -> PointFailure | None:
        """Why the target was declared dead during this point (None: it was not)."""
        return self.entry.failure


@dataclass(frozen=True)
class WatchNotes:
    """What the point's watch adds to its metrics: flags, the tool's counters, probe latency."""

    flags: tuple[str, ...]
    max_dispatch_lag_ms: float
    driver_stats: dict[str, Any] | None
    probe: ProbeSummary | None
    dropped: int | None = None
    driver_loop_lag_ms: Distribution | None = None

CPU_BOUND_SHARE = 0.9
"""A driver whose median CPU sample (2 Hz) is at 90% of its capacity is saturated: a one-thread
loop that never waits reads 95-100% of a core (the tree adds the /health probe's few %), one
that keeps up spends more than a tenth of its time idle in the selector, waiting on sockets."""


def run_label(target_label: str, driver: str, drivers: Sequence[str]) -> str:
    """`target@driver` when a scenario runs several drivers, else the target's own label."""
    return f"{target_label}@{driver}" if len(drivers) > 1 else target_label


@contextlib.contextmanager
def pinned(cores: Sequence[int] | None) -> Iterator[None]:
    """Run this process (and what it starts meanwhile) on `cores`; restore afterwards."""
    if not cores:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class PointWatch:
    """Context manager around `driver.run`: driver pinned to `driver_cores`, `/health` probed
    into `probe_path` every `job.client.probe_interval_s` (0 = no probe)."""

    def __init__(self, job: LoadJob, probe_path: Path,
                 driver_cores: Sequence[int] | None = None) -> None:
        self.job, self.probe_path = job, probe_path
        self.stack = contextlib.ExitStack()
        self.driver_cores = driver_cores

    def __enter__(self) -> PointWatch:
        self.stack.enter_context(pinned(self.driver_cores))
        job = self.job
        if job.client.probe_interval_s > 0:
            self.stack.enter_context(HealthProbe(job.base_url, job.client.probe_interval_s,
                                                 job.clock, self.probe_path))
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stack.close()

    def warmup_end(self, progress: Progress) -> float:
        """End of warm-up on the run clock, counted from when the load really began."""
        if progress.started_at is None:
            return self.job.warmup_end
        return progress.started_at + self.job.point.warmup_s

    def load_end(self, progress: Progress, samples: Sequence[Sample]) -> float:
        """End of the load (of the measured window) on the run clock, shifted like
        `warmup_end`: `job.load_end`, or with `min_requests` the moment the loop could stop (the
        min_requests-th request sent after warm-up, not before `load_end`, at most `hard_end`);
        a load a fault ended early by plan (`progress.end_at`) ends there."""
        start = self.warmup_end(progress)
        shift = start - self.job.warmup_end
        end, need = self.job.load_end + shift, self.job.point.min_requests
        if need:
            sent = sorted(s.sent_at for s in samples if s.sent_at >= start)
            reached = sent[need - 1] if len(sent) >= need else math.inf
            end = min(self.job.hard_end + shift, max(end, reached))
        return end if progress.end_at is None else min(end, progress.end_at)

    def notes(self, metrics: PointMetrics, progress: Progress,
              telemetry: PointTelemetry | None = None) -> WatchNotes:
        """The point's `flags`, `driver_stats`, `probe`, `dropped` and `driver_loop_lag_ms`
        (see the module docstring); `telemetry` gives the driver's CPU."""
        flags = list(progress.flags)
        bound = self.job.client.max_dispatch_lag_ms
        lag = metrics.dispatch_lag_ms
        since = self.warmup_end(progress)
        loop_lag = Distribution.of(ms for t, ms in progress.loop_lag if t >= since)
        cpu = telemetry.driver.cpu_pct if telemetry is not None else None
        capacity = progress.cpu_capacity_pct
        if ((lag is not None and lag.p99 > bound)
                or (loop_lag is not None and loop_lag.p99 > bound)
                or (cpu is not None and capacity and cpu.p50 >= CPU_BOUND_SHARE * capacity)):
            flags.append("driver_bound")
        if progress.dropped:
            flags.append("dropped")
        flags = list(dict.fromkeys(flags))  # a driver may have raised one itself
        probe = None
        if self.job.client.probe_interval_s > 0:
            probe = probe_summary(read_probes(self.probe_path), since=since)
        return WatchNotes(flags=tuple(flags), max_dispatch_lag_ms=bound,
                          driver_stats=dict(progress.stats) if progress.stats else None,
                          probe=probe, dropped=progress.dropped, driver_loop_lag_ms=loop_lag)


def load_job(ctx: RunContext, tc: TargetConfig, target: TargetProcess, point: LoadPoint,
             label: str) -> LoadJob:
    """The driver's job: the scenario's load, with what an external target needs sent instead
    (its model name, API kind, key), the target's own stream/api overrides, its `client` knobs
    over the scenario's `[client]`, and the scenario's `[fault]`."""
    scenario = ctx.scenario
    base = tc.effective_workload(scenario.workload)
    workload = replace(base, api=target.api) if target.api is not None else base
    model = target.model_name if target.model_name is not None else scenario.model
    return LoadJob(target=label, base_url=target.url, model_name=model, point=point,
                   workload=workload, prompts=ctx.prompts, clock=ctx.clock,
                   point_start=ctx.clock.now(), seed=scenario.seed, timeout_s=scenario.timeout_s,
                   api_key=target.api_key, client=tc.effective_client(scenario.client),
                   fault=tc.effective_fault(scenario.fault),
                   work_dir=ctx.run.driver_work(label, point.name),
                   prompt_offset=ctx.prompts.next_block())


def point_entry(job: LoadJob, tc: TargetConfig, driver: str, scenario: Scenario,
                samples: Sequence[Sample], watch: PointWatch, progress: Progress,
                telemetry: TelemetryRecorder, proxy: ProxyPool | None,
                repeat: int = 0, fault: FaultSummary | None = None) -> PointSummary:
    """The point's summary.json entry: identity, metrics of the measured window, the watch's
    notes (flags, driver_stats, probe), telemetry, a gateway's pool accounting, and a spike
    point's phases and recovery (`harness.metrics.spike`)."""
    warmup_end, load_end = watch.warmup_end(progress), watch.load_end(progress, samples)
    metrics = summarize(samples, warmup_end=warmup_end, load_end=load_end, slo=scenario.slo)
    point_telemetry = telemetry.summary(samples, warmup_end, load_end)
    notes = watch.notes(metrics, progress, point_telemetry)
    point = job.point
    flags = notes.flags
    if point.min_requests and sum(s.sent_at >= warmup_end for s in samples) < point.min_requests:
        flags += ("max_duration_hit",)  # stopped at max_duration_s without min_requests
    failure = None
    if progress.abort is not None and not expected_end(fault, progress.abort_at):
        failure = point_failure(progress.abort, progress.abort_at or load_end, samples)
        flags += ("target_failed",)
    spike = spike_summary(samples, point, started_at=warmup_end - point.warmup_s,
                          warmup_end=warmup_end, load_end=load_end,
                          retry_refused=job.client.retry_refused if driver == "builtin" else 0,
                          records=telemetry.records)  # only the builtin driver retries
    return PointSummary.of(
        metrics, target=job.target, target_name=tc.name, driver=driver, point=point.name,
        load=point.load(), stream=job.workload.stream, flags=flags, repeat=repeat,
        max_dispatch_lag_ms=notes.max_dispatch_lag_ms, driver_stats=notes.driver_stats,
        probe=notes.probe, telemetry=point_telemetry, dropped=notes.dropped,
        driver_loop_lag_ms=notes.driver_loop_lag_ms, failure=failure,
        fault=fault, proxy=proxy, spike=spike)  # proxy: a gateway's pool wait vs upstream


def run_point(ctx: RunContext, tc: TargetConfig, target: TargetProcess, point: LoadPoint,
              driver_name: str, repeat: int = 0) -> PointResult:
    """Drive `point` against `target` with `driver_name`; store its samples and telemetry."""
    scenario, run = ctx.scenario, ctx.run
    driver = get_driver(driver_name)
    job = load_job(ctx, tc, target, point, run_label(tc.label, driver.name, scenario.drivers))
    pool_before = read_pool_totals(target.url) if target.gateway is not None else None
    progress = Progress()
    watch = PointWatch(job, run.probes(job.target, point.name), scenario.cpu_affinity.get("driver"))
    telemetry = TelemetryRecorder(  # GPU, host CPU/RSS, /health and /metrics series
        ctx.clock, folder=run.telemetry_dir, label=job.target, point=point.name, url=target.url,
        target_pids=[target.pid, *(c.pid for c in target.companions)],
        warmup_end=job.warmup_end)
    interrupted = False
    start = lambda: progress.started_at or job.point_start  # noqa: E731  # the load's start
    fault = SigtermWatch.of(job.fault, target.process, ctx.clock, start,
                            on_exit=lambda reason: progress.fail(reason, ctx.clock.now()))
    deploy = RollingDeploy.of(job.fault, target, ctx.clock, start,
                              on_done=lambda end_at: setattr(progress, "end_at", end_at))
    liveness = Liveness(target.url, target.process, ctx.clock,
                        on_dead=lambda reason: progress.fail(reason, ctx.clock.now()),
                        expected=lambda: fault is not None and fault.signalled,
                        skip_health=lambda: deploy is not None)  # a replica's 503 via the
    # balancer is no death of the fleet: its process exit is, and the driver's error streak
    cleanup = Cleanup.of(job.fault, target_urls(target), ctx.clock)  # disconnect
    if cleanup is not None:
        cleanup.before()
    with (ProgressPrinter(ctx.out, job, progress, ctx.progress_interval_s), watch, telemetry,
          liveness, fault or contextlib.nullcontext(), deploy or contextlib.nullcontext()):
        try:
            samples = driver.run(job, progress)
        except DriverInterrupted as exc:
            samples, interrupted = exc.samples, True
        if deploy is not None and (interrupted or progress.abort is not None):
            deploy.cancel()  # else the deploy runs to its end before the point does
        record: FaultSummary | None = None
        if cleanup is not None:  # at once after the load: until the target is idle again
            record, interrupted = _cleaned(cleanup, samples, interrupted, progress)
    proxy = _pool(pool_before, target.url)
    write_samples(run.samples(job.target, point.name), samples)
    append_records(run.telemetry(job.target), telemetry.records)
    if fault is not None:
        record = shutdown_summary(fault.signal_at, fault.exit_at, samples)
    if deploy is not None and job.fault is not None:
        record = FaultSummary(kind="rolling", completed=sum(s.ok for s in samples),
                              rolling=rolling_summary(
                                  deploy.steps(), job.fault, samples,
                                  warmup_end=watch.warmup_end(progress),
                                  load_end=watch.load_end(progress, samples),
                                  retry_refused=job.client.retry_refused))
    entry = point_entry(job, tc, driver.name, scenario, samples, watch, progress, telemetry,
                        proxy, repeat, record)
    return PointResult(entry, samples, interrupted)


def _cleaned(cleanup: Cleanup, samples: Sequence[Sample], interrupted: bool,
             progress: Progress) -> tuple[FaultSummary, bool]:
    """The disconnect record, waiting for the target to be idle unless the run was stopped or
    the target died; a ^C while it waits ends the wait (the point is kept, interrupted)."""
    try:
        return cleanup.after(samples, poll=not interrupted and progress.abort is None), interrupted
    except KeyboardInterrupt:
        return cleanup.after(samples, poll=False), True


def _pool(before: PoolTotals | None, url: str) -> ProxyPool | None:
    """The pool accounting since `before` (None when there was none to read)."""
    after = read_pool_totals(url) if before is not None else None
    return pool_point(before, after) if before is not None and after is not None else None
