"""`summary.json`: the typed, versioned record of what a run measured.

The report, the gate, `compare` and other tools read this file, so it is one set of frozen
types, each part built by the stage that computes it and read back through the same types:

    RunSummary                       the runner (`harness.run.runner`), after every point
      targets: {label: TargetRun}    the runner: started or failed, and why
      points: (PointSummary, ...)    one per target × driver × load point (`harness.run.point`):
        PointMetrics fields            `harness.metrics.summarize(samples)`
        flags, driver_stats, probe     the point's watch (driver truth, /health probe)
        telemetry: PointTelemetry      `harness.telemetry.summary.summarize_telemetry`
        spike: SpikeSummary            a spike point's phases and recovery (`harness.metrics.spike`)
        proxy: ProxyPool               a gateway's pool accounting (`harness.telemetry.pool`)

Every metric is a `Distribution` (None when there was no value, never a silent 0), in the unit its
name states (`_ms` milliseconds, `_s` seconds, `_pct` percent, `_mb` MiB, `_j` joules).
`docs/results.md` lists every field and `docs/summary.schema.json` is the JSON Schema, both
generated from these types (`python -m harness.records.docs`).

`read_summary(path)` raises `SummaryError` with a one-line reason for a file it cannot read,
including one written by an older or newer version of patternbench.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from harness.metrics.distribution import Distribution as Distribution
from harness.records.typed_json import RecordError, decode, doc, encode
from harness.scenario.capacity import DEFAULT_SHARE
from harness.summary.fault import FaultSummary
from harness.summary.spike import SpikeSummary

SCHEMA_VERSION = 5
READS = (4, 5)
"""Bumped whenever a field is removed or changes meaning, or is added without a default that
reads the older files of the version right. 5: within-run intervals that see correlation
(`harness.metrics.sections`): every distribution's `ci95` is the hull of the order-statistic
and the sectioned interval, with `mean` added; `throughput.ci95` and `goodput.ci95` (schema 4
files are still read: their intervals are the narrower order-statistic ones, and the gate and
`compare` refuse them); goodput counts requests sent after the warm-up (as the percentiles
do); a capacity level's `judged`, `good_ci`, `tries` and `why`, and the search's stop reasons
`target_died` and `unjudged`; 4: `capacity` (the capacity search's interval per
target) and `slo_share`; a target that died during the run (`failure` on its point, `status`
"failed" with `failed_point` and `skipped`), the `never_ran` targets × points of an
interrupted run; the server's prefix-cache hit rate (`telemetry.server.prefix_cache_hit_pct`);
a point's injected `fault` (SIGTERM: drain; later, with defaults that older files read as
they meant: `requests.abandoned` = 0 and the disconnect fault's fields, null for a sigterm);
a spike point's `spike` accounting (null elsewhere); 3: confidence intervals and `too_few` on
every distribution, failures dated by `failed_at`, the fixed measured window,
`goodput.unknown`, `dropped`, the probe's censoring, `repeat`; 2: typed record (this module),
`load.params` nested; 1: the untyped dict of the first releases."""


@dataclass(frozen=True)
class Requests:
    """Requests of a point by outcome (`harness.samples.Status`): every request that ended
    (completed, or its failure was seen: `failed_at`) at or after the end of warm-up, also
    those that ended after the load while the driver drained."""

    ok: int = doc("completed with every token")
    http_error: int = doc("answered with an HTTP error status other than 503")
    refused: int = doc("refused by backpressure: HTTP 503")
    timeout: int = doc("a connect, first-token, between-tokens or total timeout fired")
    truncated: int = doc("the stream ended early (no [DONE], fewer tokens than asked)")
    conn_error: int = doc("the connection failed or was reset")
    total: int = doc("all counted requests (ended after warm-up, drain included), abandoned "
                     "streams apart")
    abandoned: int = doc("streams the client closed itself after fault.after_tokens token "
                         "chunks ([fault] disconnect): the client's choice, not in total and "
                         "no error", 0)


@dataclass(frozen=True)
class Throughput:
    """Rates over the measured window [end of warm-up, end of load]; None when it is empty."""

    window_s: float | None = doc("length of the measured window: load end − warm-up end, s")
    req_s: float | None = doc("ok requests completed inside the window, per second")
    output_tok_s: float | None = doc("output tokens of ok requests that arrived inside the "
                                     "window, per second (usage-scaled when a chunk carries "
                                     "several; pro rata without token times)")
    input_tok_s: float | None = doc("prompt tokens of the requests req_s counts, per second")
    ci95: dict[str, tuple[float, float] | None] = doc(
        "95% interval [lo, hi] of req_s, output_tok_s and input_tok_s from the run's own "
        "variation over time: the window cut into `sections` equal spans, overall rate ± "
        "t · sd(section rates) / √sections (harness.metrics.sections); null: too few sections "
        "(schema 4 files: absent)", {})
    sections: int | None = doc("how many equal spans the window was cut into for ci95", None)


@dataclass(frozen=True)
class Goodput:
    """Requests that met every SLO of the scenario (a limit a request cannot show is not met)."""

    slo: dict[str, float] = doc("the SLO limits, e.g. {\"ttft_ms\": 500}")
    good_requests: int = doc("counted ok requests with every limit known and met")
    req_s: float | None = doc("good requests completed inside the window, per second")
    fraction: float | None = doc("good requests / counted requests (0..1)")
    counted: int | None = doc("the requests fraction is over: those sent after the warm-up, and "
                              "those sent during it that failed (schema 4: absent)", None)
    ci95: dict[str, tuple[float, float] | None] = doc(
        "95% interval [lo, hi] of fraction (the hull of the Wilson interval and the sectioned "
        "one: failures come in bursts) and of req_s (sectioned, like throughput's); null: too "
        "few values or sections (schema 4 files: absent)", {})
    unknown: str | None = doc("why goodput cannot be judged (a limit this driver or mode "
                              "cannot measure); then req_s and fraction are null", None)


@dataclass(frozen=True)
class Load:
    """The load of a point, as the scenario set it."""

    kind: str = doc("arrival kind: closed, constant, poisson, gamma, ramp, spike, trace")
    concurrency: int | None = doc("closed loop: requests in flight", None)
    rate_rps: float | None = doc("open loop: arrival rate, requests per second", None)
    params: dict[str, Any] = doc("arrival-shape extras (burstiness, ramp end, ...)", {})


DISTRIBUTIONS = ("ttft_ms", "ttft_sched_ms", "ttfb_ms", "tpot_ms", "itl_ms", "e2e_ms",
                 "e2e_sched_ms", "dispatch_lag_ms", "output_tokens")
"""The `PointMetrics` fields that are a `Distribution` of per-request values."""


@dataclass(frozen=True, kw_only=True)
class PointMetrics:
    """What `harness.metrics.summarize` computes from one point's samples."""

    requests: Requests = doc("counted requests by outcome")
    http_errors: dict[str, int] = doc("http_error requests by HTTP status code")
    ttft_ms: Distribution | None = doc("time to first token from sent, ms (this and every "
                                       "latency: ok requests sent after warm-up)")
    ttft_sched_ms: Distribution | None = doc("time to first token from scheduled, ms")
    ttfb_ms: Distribution | None = doc("time to first byte from sent, ms")
    tpot_ms: Distribution | None = doc("per request (E2E − TTFT) / (tokens − 1), ms")
    itl_ms: Distribution | None = doc("gaps between consecutive tokens, pooled, ms")
    e2e_ms: Distribution | None = doc("sent to last byte, ms")
    e2e_sched_ms: Distribution | None = doc("scheduled to last byte (client queueing in), ms")
    dispatch_lag_ms: Distribution | None = doc("sent − scheduled of every request sent after "
                                               "warm-up: the driver's own lag, ms")
    output_tokens: Distribution | None = doc("output tokens per ok request sent after warm-up")
    throughput: Throughput = doc("rates over the measured window")
    goodput: Goodput | None = doc("requests within the SLO; null when the scenario sets none")
    achieved_concurrency: float | None = doc("mean requests in flight (failing ones too) over "
                                             "the window")
    token_counts_from: tuple[str, ...] = doc("where output counts came from: usage, counted, "
                                             "requested, unknown")


@dataclass(frozen=True)
class ProcessTree:
    """CPU and memory of one process tree (the target's or the driver's)."""

    samples: int = doc("host samples in the window")
    cpu_pct: Distribution | None = doc("CPU, 100 per busy core, %")
    rss_peak_mb: float | None = doc("peak resident set size, MiB")
    pss_peak_mb: float | None = doc("peak proportional set size, MiB")
    procs_max: int | None = doc("most processes seen in the tree")


@dataclass(frozen=True)
class GpuTelemetry:
    """GPU utilization, memory, power and energy through NVML over the window."""

    available: bool = doc("whether NVML answered")
    reason: str | None = doc("why not, when unavailable", None)
    devices: int = doc("GPUs sampled", 0)
    names: tuple[str, ...] = doc("their names", ())
    samples: int = doc("GPU samples in the window", 0)
    util_pct: Distribution | None = doc("utilization, %", None)
    mem_used_peak_mb: float | None = doc("peak memory in use, summed over GPUs, MiB", None)
    power_w: Distribution | None = doc("board power, W", None)
    sm_clock_mhz: Distribution | None = doc("SM clock, MHz", None)
    energy_j: float | None = doc("power integrated over the window, J", None)
    energy_j_counter: float | None = doc("the same from NVML's energy counter, J", None)
    tokens_per_j: float | None = doc("output tokens / energy_j", None)


@dataclass(frozen=True)
class HealthTelemetry:
    """The telemetry /health series (about 1 Hz, a fresh connection each)."""

    count: int = doc("probes sent in the window")
    failed: int = doc("probes without a 200 answer (the censored ones included)")
    latency_ms: Distribution | None = doc("latency, a probe without an answer counted at its "
                                          "wait (censored: at least that), ms")
    censored: int = doc("probes that got no answer at all (timed out): counted at their wait",
                        0)


@dataclass(frozen=True)
class ServerTelemetry:
    """What the target's Prometheus /metrics said during the window."""

    source: str | None = doc("whose metric names: patternbench, vllm, llamacpp")
    scrapes: int = doc("scrapes in the window")
    failed: int = doc("scrapes that failed")
    in_flight_max: float | None = doc("most requests in flight")
    queue_depth_max: float | None = doc("most requests waiting")
    batch_size_max: float | None = doc("largest running batch")
    batch_size_mean: float | None = doc("mean running batch")
    kv_cache_pct_max: float | None = doc("highest KV-cache use, %")
    prefix_cache_hit_pct: float | None = doc("prompt tokens served from the prefix cache in the "
                                             "window, % of those looked up")


@dataclass(frozen=True)
class PointTelemetry:
    """Machine and target telemetry of one point's measured window."""

    window_s: float | None = doc("the window the telemetry covers, s")
    gpu: GpuTelemetry = doc("GPU through NVML")
    target: ProcessTree = doc("the target's process tree")
    driver: ProcessTree = doc("the load driver's process tree")
    health: HealthTelemetry = doc("the /health series")
    server: ServerTelemetry = doc("the target's /metrics")


@dataclass(frozen=True)
class ProbeSummary:
    """The event-loop /health probe: latency with timed-out probes censored at the timeout."""

    latency_ms: Distribution | None = doc("latency, a probe without an answer counted at "
                                          "timeout_ms (censored)")
    sent: int = doc("probes sent in the window")
    answered: int = doc("probes answered 200")
    censored: int = doc("probes without an answer within the timeout")
    missed_ticks: int = doc("ticks skipped while a probe waited (the probe could not keep its "
                            "rate: the server answered slower than the interval)")
    timeout_ms: float = doc("the probe's timeout, ms")


@dataclass(frozen=True)
class ProxyPool:
    """A gateway's connection-pool accounting between two /metrics scrapes around the point."""

    requests: int = doc("requests the gateway finished during the point")
    pool_size: int | None = doc("connection pool limit")
    pool_wait_ms_mean: float | None = doc("mean wait for a pooled connection, ms")
    upstream_ms_mean: float | None = doc("mean time holding one (upstream work), ms")
    pool_wait_share: float | None = doc("wait / (wait + upstream), 0..1")


@dataclass(frozen=True)
class PointFailure:
    """Why a load point stopped early: its target died (`harness.run.liveness`, the driver's
    error streak)."""

    reason: str = doc("one line: process exit code, /health failures or the error streak")
    detected_at_s: float = doc("when the harness declared the target dead, run clock, s")
    first_error_at_s: float | None = doc("when the first failed request after the last good "
                                         "one ended, run clock, s (null: none failed)")
    failed_requests: int = doc("failed requests of the point (all of them, warm-up included)")


@dataclass(frozen=True, kw_only=True)
class PointSummary(PointMetrics):
    """One target × driver × load point: its identity, metrics, flags and telemetry."""

    target: str = doc("series label: the target's label, `label@driver` with several drivers")
    target_name: str = doc("registry name of the serving pattern")
    driver: str = doc("load driver: builtin, k6, locust")
    point: str = doc("load point name")
    load: Load = doc("the load as the scenario set it")
    stream: bool = doc("whether requests streamed (SSE)")
    flags: tuple[str, ...] = doc("what the numbers must not hide: driver_bound, "
                                 "no_token_timing, ...")
    max_dispatch_lag_ms: float = doc("dispatch lag p99 above which the point is driver_bound")
    driver_stats: dict[str, Any] | None = doc("the load tool's own counters", None)
    dropped: int | None = doc("arrivals the driver never sent (k6 dropped iterations, locust "
                              "arrivals no user took); null where the driver cannot tell", None)
    driver_loop_lag_ms: Distribution | None = doc("the driver's own event-loop lag, ms", None)
    probe: ProbeSummary | None = doc("event-loop /health probe of the measured window", None)
    repeat: int = doc("which repeat of the scenario this point belongs to (0-based)", 0)
    telemetry: PointTelemetry | None = doc("telemetry of the measured window", None)
    proxy: ProxyPool | None = doc("gateway pool accounting", None)
    failure: PointFailure | None = doc("set when the target died during the point (flag "
                                       "target_failed); the point stopped early", None)
    fault: FaultSummary | None = doc("what the scenario's [fault] did (harness.run.fault)", None)
    spike: SpikeSummary | None = doc("an open-loop spike point: before / during / after the "
                                     "spike, recovery, memory growth (harness.metrics.spike)", None)

    @classmethod
    def of(cls, metrics: PointMetrics, **rest: Any) -> PointSummary:
        """`metrics` with the point's identity, watch notes and telemetry (`rest`)."""
        own = {f.name: getattr(metrics, f.name) for f in fields(PointMetrics)}
        return cls(**own, **rest)


@dataclass(frozen=True)
class TargetRun:
    """A target of the run: whether it started, and how."""

    name: str = doc("registry name")
    options: dict[str, Any] = doc("the scenario's options for it")
    status: Literal["ok", "failed"] = doc("ok: started and measured; failed: did not start, "
                                          "or died during a load point")
    startup_s: float | None = doc("seconds until it answered /health", None)
    error: str | None = doc("why it failed (the log's tail, or why the harness declared it "
                            "dead)", None)
    failed_point: str | None = doc("the load point during which it died", None)
    skipped: tuple[str, ...] = doc("load points not run because it had failed", ())


StopReason = Literal["resolved", "max_level", "budget", "fails_at_start", "interrupted",
                     "target_died", "unjudged"]
Judgement = Literal["pass", "fail", "unsure", "unjudged", "died"]


@dataclass(frozen=True)
class CapacityLevel:
    """One level a capacity search measured (also an ordinary point of `points`)."""

    level: float = doc("concurrency (closed loop) or arrival rate, req/s (open loop)")
    point: str = doc("the point's name in `points`")
    passed: bool = doc("the level passed: its within-SLO share is above the share with 95% "
                       "confidence")
    good_fraction: float | None = doc("requests that met every SLO limit / counted requests")
    goodput_req_s: float | None = doc("good requests completed per second")
    judged: Judgement | None = doc(
        "pass: the 95% interval of the within-SLO share is wholly at or above the share; fail: "
        "wholly below; unsure: it holds the share after every retry (counted as a fail); "
        "unjudged: the point cannot say (driver-bound, dropped arrivals, no goodput); died: the "
        "target died or stopped answering (null: schema 4)", None)
    good_ci: tuple[float, float] | None = doc("95% interval of good_fraction (goodput's ci95)",
                                              None)
    tries: int = doc("times the level was measured (an unsure one again, twice as long)", 1)
    why: str | None = doc("why an unjudged or died level ended the search", None)


@dataclass(frozen=True)
class Capacity:
    """A target's capacity under the SLO: the interval between the last passing and the first
    failing level (`harness.run.capacity`)."""

    axis: Literal["concurrency", "rate_rps"] = doc("what the search varied")
    arrival: str = doc("arrival kind of its points: closed, constant, poisson, gamma")
    slo: dict[str, float] = doc("the SLO limits, e.g. {\"ttft_ms\": 1000}")
    share: float = doc("share of requests that must meet every limit (0..1)")
    last_pass: CapacityLevel | None = doc("highest level that passed (null: none did)")
    first_fail: CapacityLevel | None = doc("lowest level above it that failed (null: none "
                                           "did, up to max_level or the budget)")
    stopped: StopReason = doc(
        "why the search ended: interval within the resolution, max_level passed, the time "
        "budget would be passed by the next point, the first level already failed, ^C, the "
        "target died (no capacity: its last level's `why`), a level could not be judged "
        "(driver-bound, dropped arrivals: a lower bound only)")
    elapsed_s: float = doc("wall time of the search, s")
    budget_s: float = doc("its time budget, s")
    levels: tuple[CapacityLevel, ...] = doc("every level measured, in order")


@dataclass(frozen=True)
class RunSummary:
    """Everything a run measured, point by point. Written after every point."""

    schema_version: int = doc("version of this record's shape")
    run: str = doc("run folder name")
    scenario: str = doc("scenario name")
    interrupted: bool = doc("the run was stopped before its end (^C)")
    targets: dict[str, TargetRun] = doc("targets by series label")
    points: tuple[PointSummary, ...] = doc("one per target × driver × load point")
    slo_share: float = doc("share of requests that must meet every SLO limit for a load "
                           "level to pass (`[slo] share`)", DEFAULT_SHARE)
    capacity: dict[str, Capacity] = doc("capacity search result by series label (kind = "
                                        "\"capacity\" only)", {})
    never_ran: dict[str, tuple[str, ...]] = doc("interrupted run: series label → the load "
                                                "points that never ran", {})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = encode(self)
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunSummary:
        """Decode a parsed summary.json; `SummaryError` (one line) when it does not fit."""
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version not in READS:
            raise SummaryError(_version_message(version))
        try:
            return decode(cls, data)
        except RecordError as exc:
            raise SummaryError(f"summary.json does not fit schema {SCHEMA_VERSION}: "
                               f"{exc}") from None


class SummaryError(ValueError):
    """summary.json cannot be read as a `RunSummary`; the message says why in one line."""


def _version_message(version: object) -> str:
    if isinstance(version, int) and not isinstance(version, bool) and version < min(READS):
        return (f"summary.json was written by an older version of patternbench (schema "
                f"{version}; this one reads {SCHEMA_VERSION}): rerun the scenario, or read it "
                "with the version that wrote it")
    if isinstance(version, int) and not isinstance(version, bool):
        return (f"summary.json was written by a newer version of patternbench (schema "
                f"{version}; this one reads {SCHEMA_VERSION}): upgrade patternbench")
    return "summary.json has no schema_version: it was not written by patternbench"


def read_summary(path: Path) -> RunSummary:
    """Read and decode `path`; `SummaryError` for a file that is unreadable or does not fit."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SummaryError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SummaryError(f"{path} could not be read ({type(exc).__name__}: {exc})") from None
    return RunSummary.from_json(data)
