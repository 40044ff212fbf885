"""`patternbench calibrate`: how fast each load driver is on this machine, against a zero-work
target.

Each driver runs one closed-loop point of `concurrency` (default 64) streams against the `echo`
target (N tokens per request, no delay, no model). What it reaches there is the harness's own
overhead, the floor under every figure it reports:

- `max_req_s`: completed requests per second over the measured window, the highest rate the
  driver (with the echo server) sustains at that many concurrent streams;
- `ttft_p99_ms`: the TTFT floor, p99 at that concurrency (k6 has no token timing: its floor is
  the time to first byte, `timing = "first_byte"`);
- `driver_cpu_ms_per_req` and `req_s_per_core` (= 1000 / it): the driver's CPU cost per request
  from the point's telemetry, a capacity figure that holds even when other work shares the
  machine (then `max_req_s` is lower than the driver could do alone);
  `target_cpu_ms_per_req` is the echo server's share.

By default the echo target is pinned to core 0 and the driver to core 1 when the machine has two
or more cores, so the two do not trade CPU. The run is an ordinary patternbench run (its samples
and report are kept) and the figures go to `<results>/calibration.json` (a
`harness.run.calibration.Calibration`), which every later run copies into its manifest
(`Manifest.calibration`) and the report shows.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.records.atomic import write_json
from harness.run.calibration import SCHEMA_VERSION, Calibration, DriverFloor, LoadAverage
from harness.run.folder import RunDir, calibration_path
from harness.run.machine import machine, now_iso, versions
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint, Scenario, TargetConfig, Workload
from harness.summary.record import PointSummary, read_summary

SIM_TOKENIZER = "sim:ttft_ms=0,tpot_ms=0"  # prompts only need the tokenizer; echo loads no model


@dataclass(frozen=True)
class CalibrateOptions:
    drivers: Sequence[str] = ("builtin", "k6", "locust")
    concurrency: int = 64
    tokens: int = 16
    prompt_tokens: int = 16
    duration_s: float = 6.0
    warmup_s: float = 1.0
    results_root: Path = Path("results")
    reports_root: Path = Path("reports")
    pin: bool = True


def calibration_scenario(opts: CalibrateOptions) -> Scenario:
    """The run `calibrate` makes: echo target, one closed-loop point, every driver."""
    cores = sorted(os.sched_getaffinity(0))
    affinity = ({"target": (cores[0],), "driver": (cores[1],)}
                if opts.pin and len(cores) >= 2 else {})
    point = LoadPoint(name=f"c{opts.concurrency}", kind="closed", duration_s=opts.duration_s,
                      warmup_s=opts.warmup_s, concurrency=opts.concurrency)
    workload = Workload(prompt_tokens=opts.prompt_tokens, output_tokens=opts.tokens,
                        stream=True)
    drivers = tuple(opts.drivers)
    return Scenario(
        name="calibrate", description="patternbench calibrate: drivers against the echo target",
        model=SIM_TOKENIZER, seed=1, driver=drivers[0], drivers=drivers, workload=workload,
        points=(point,), targets=(TargetConfig(name="echo", label="echo"),), timeout_s=30.0,
        client=ClientSettings(probe_interval_s=0.0, max_dispatch_lag_ms=10.0),
        cpu_affinity=affinity,
        raw={"name": "calibrate", "driver": list(drivers), "cpu_affinity":
             {k: list(v) for k, v in affinity.items()}})


def figures(points: Sequence[PointSummary]) -> dict[str, DriverFloor]:
    """Per driver: `max_req_s`, `ttft_p99_ms` (or first byte for k6), and what else bounds them."""
    out: dict[str, DriverFloor] = {}
    for p in points:
        floor = p.ttft_ms or p.ttfb_ms
        req_s = p.throughput.req_s
        cpu_ms = _cpu_ms_per_request(p, "driver", req_s)
        lag = p.dispatch_lag_ms
        out[p.driver] = DriverFloor(
            max_req_s=_round(req_s),
            driver_cpu_ms_per_req=_round(cpu_ms, 3),
            req_s_per_core=_round(1000 / cpu_ms) if cpu_ms else None,
            target_cpu_ms_per_req=_round(_cpu_ms_per_request(p, "target", req_s), 3),
            ttft_p99_ms=_round(floor.p99 if floor else None),
            ttft_p50_ms=_round(floor.p50 if floor else None),
            timing="token" if p.ttft_ms else "first_byte",
            ok=p.requests.ok, errors=p.requests.total - p.requests.ok,
            dispatch_lag_p99_ms=_round(lag.p99 if lag else None))
    return out


def _cpu_ms_per_request(point: PointSummary, role: str, req_s: float | None) -> float | None:
    """CPU ms one request cost `role` (driver or target process tree), from the point's
    telemetry: mean CPU % over the measured window ÷ completed requests per second. Unlike
    `max_req_s` it holds when other work shares the cores."""
    if point.telemetry is None or not req_s or req_s <= 0:
        return None
    cpu = (point.telemetry.driver if role == "driver" else point.telemetry.target).cpu_pct
    return None if cpu is None else cpu.mean / 100 * 1000 / req_s


def _round(value: Any, digits: int = 2) -> float | None:
    return round(float(value), digits) if isinstance(value, (int, float)) else None


def calibrate(opts: CalibrateOptions, out: TextIO = sys.stderr) -> Calibration:
    """Run the calibration, store `<results>/calibration.json` and return what it holds."""
    from harness.run.runner import RunOptions, run_scenario

    scenario = calibration_scenario(opts)
    load_before = os.getloadavg()[0]
    run_dir = run_scenario(scenario, RunOptions(results_root=opts.results_root,
                                                reports_root=opts.reports_root,
                                                scenario_file=None, out=out))
    summary = read_summary(RunDir(run_dir).summary)
    data = Calibration(
        schema_version=SCHEMA_VERSION, created=now_iso(), run=run_dir.name, target="echo",
        concurrency=opts.concurrency, tokens_per_request=opts.tokens,
        duration_s=opts.duration_s,
        # other work on the machine lowers max_req_s (not the CPU ms per request): rerun if high
        load_avg_1m=LoadAverage(before=round(load_before, 2),
                                after=round(os.getloadavg()[0], 2)),
        cpu_affinity=dict(scenario.cpu_affinity), machine=machine(),
        versions={k: v for k, v in versions().items()
                  if k in ("python", "aiohttp", "k6", "locust")},
        drivers=figures(summary.points))
    write_json(calibration_path(opts.results_root), data.to_json())
    return data


def table(data: Calibration) -> str:
    """A short text table of the calibration figures."""
    lines = [f"harness overhead against echo ({data.concurrency} streams, "
             f"{data.tokens_per_request} tokens each):",
             f"  {'driver':8s} {'max req/s':>10s} {'TTFT p99 ms':>12s} {'p50 ms':>8s} "
             f"{'CPU ms/req':>11s} {'req/s/core':>11s}  timing"]
    for name, f in data.drivers.items():
        lines.append(f"  {name:8s} {_fmt(f.max_req_s):>10s} {_fmt(f.ttft_p99_ms):>12s} "
                     f"{_fmt(f.ttft_p50_ms):>8s} {_fmt(f.driver_cpu_ms_per_req, 3):>11s}"
                     f" {_fmt(f.req_s_per_core):>11s}  {f.timing}")
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
