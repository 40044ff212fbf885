"""Run a scenario: for each target, start it, drive each load point, store samples and metrics.

The runner only wires stages together: launcher → driver → samples → metrics → results. It
writes `summary.json` after every load point, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from harness import __version__
from harness.drivers import DriverInterrupted, LoadJob, Progress, get_driver
from harness.drivers.watch import PointWatch, job_settings, pinned, run_label
from harness.launcher import (
    LaunchError,
    TargetProcess,
    connect_external,
    start_proxy,
    start_target,
)
from harness.metrics import SCHEMA_VERSION, summarize
from harness.pool_probe import pool_point, read_pool_totals
from harness.results import git_info, machine, new_run_dir, now_iso, versions, write_json
from harness.samples import Clock, Sample, write_samples
from harness.scenario import LoadPoint, Scenario, TargetConfig
from harness.telemetry import TelemetryRecorder, append_records
from harness.workload import PromptFactory


@dataclass
class RunOptions:
    results_root: Path = Path("results")
    reports_root: Path = Path("reports")
    scenario_file: str | None = None
    ready_timeout_s: float = 180.0
    out: TextIO = field(default_factory=lambda: sys.stderr)
    progress_interval_s: float = 2.0


@dataclass
class RunState:
    """What a run has produced so far (and what `summary.json` is written from)."""

    run_dir: Path
    scenario: Scenario
    points: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    interrupted: bool = False

    def write_summary(self) -> None:
        write_json(self.run_dir / "summary.json", {
            "schema_version": SCHEMA_VERSION,
            "run": self.run_dir.name,
            "scenario": self.scenario.name,
            "interrupted": self.interrupted,
            "targets": self.targets,
            "points": self.points,
        })


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_manifest(scenario: Scenario, run_dir: Path, opts: RunOptions, device: str,
                   model: dict[str, Any], git: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": run_dir.name,
        "created": now_iso(),
        "patternbench": __version__,
        "scenario": dict(scenario.raw) | {"resolved": _resolved(scenario)},
        "scenario_file": opts.scenario_file,
        "git": git,
        "versions": versions(),
        "machine": machine(),
        "device": device,
        "model": model,
        "seeds": {"scenario": scenario.seed},
        "driver": scenario.driver,
    } | _calibration(opts.results_root)


def _calibration(results_root: Path) -> dict[str, Any]:
    """The harness's own overhead from `patternbench calibrate`, when it was run here."""
    from harness.calibrate import read_calibration

    calibration = read_calibration(results_root)
    return {"calibration": calibration} if calibration else {}


def _resolved(scenario: Scenario) -> dict[str, Any]:
    return {
        "model": scenario.model,
        "driver": scenario.driver,
        "device": scenario.device,
        "workload": asdict(scenario.workload),
        "points": [asdict(p) | {"params": dict(p.params)} for p in scenario.points],
        "targets": [{"name": t.name, "label": t.label, "options": dict(t.options)}
                    for t in scenario.targets],
    }


def prepare_model(spec: str) -> tuple[dict[str, Any], Any]:
    """Materialize the model folder once for every process; return its manifest entry and
    tokenizer."""
    from targets.model import load_tokenizer, materialize, model_hash, parse_model_spec

    folder = materialize(parse_model_spec(spec))
    return ({"spec": spec, "folder": str(folder), "hash": model_hash(folder)},
            load_tokenizer(folder))


class ProgressPrinter:
    """Prints a one-line status of the running load point every few seconds."""

    def __init__(self, out: TextIO, label: str, job: LoadJob, progress: Progress,
                 interval_s: float) -> None:
        self.out, self.label, self.job, self.progress = out, label, job, progress
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def line(self) -> str:
        p, job = self.progress, self.job
        elapsed = job.clock.now() - job.point_start
        total = job.point.warmup_s + job.point.duration_s
        phase = "warm-up" if elapsed < job.point.warmup_s else "measure"
        return (f"  [{self.label} {job.point.name}] {min(elapsed, total):5.1f}/{total:.0f}s "
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


TargetOpener = Callable[[TargetConfig, Scenario, Path, RunOptions], TargetProcess]


def open_local_target(tc: TargetConfig, scenario: Scenario, run_dir: Path,
                      opts: RunOptions) -> TargetProcess:
    return start_target(tc.label, tc.name, model=scenario.model, device=scenario.device,
                        options=tc.options, log_path=run_dir / "logs" / f"{tc.label}.log",
                        ready_timeout_s=opts.ready_timeout_s)


def open_registry_target(tc: TargetConfig, scenario: Scenario, run_dir: Path,
                         opts: RunOptions) -> TargetProcess:
    """Open `tc` the way its registry kind says (`targets.TargetKind`): a local process, vLLM
    from .venv-vllm (checked first, long readiness wait), an external URL, or a proxy after its
    upstream. Raises `LaunchError` with a one-line reason when it cannot."""
    from targets import TARGETS

    info = TARGETS.get(tc.name)
    if info is None:
        raise LaunchError(f"unknown target {tc.name!r}; see `patternbench list`")
    log_path = run_dir / "logs" / f"{tc.label}.log"
    ready_s = max(opts.ready_timeout_s, info.ready_timeout_s or 0.0)
    if info.kind == "external":
        return connect_external(tc.label, tc.options, log_path)
    if info.kind == "vllm":
        from targets.vllm import install_error

        problem = install_error(tc.options)
        if problem is not None:
            raise LaunchError(problem)
    if info.kind == "proxy":
        return start_proxy(tc.label, tc.name, model=scenario.model, device=scenario.device,
                           options=tc.options, log_path=log_path, ready_timeout_s=ready_s)
    return start_target(tc.label, tc.name, model=scenario.model, device=scenario.device,
                        options=tc.options, log_path=log_path, ready_timeout_s=ready_s)


def run_point(state: RunState, tc: TargetConfig, target: TargetProcess, point: LoadPoint,
              prompts: PromptFactory, clock: Clock, opts: RunOptions,
              driver_name: str | None = None) -> list[Sample]:
    scenario = state.scenario
    driver = get_driver(driver_name or scenario.driver)
    label = run_label(tc.label, driver.name, scenario.drivers)
    extra = target.extra  # what an external target needs sent instead of the scenario's
    base = tc.effective_workload(scenario.workload)  # per-target stream/api overrides
    workload = replace(base, api=extra["api"]) if "api" in extra else base
    job = LoadJob(target=label, base_url=target.url,
                  model_name=extra.get("model_name", scenario.model), point=point,
                  workload=workload, prompts=prompts, clock=clock,
                  point_start=clock.now(), seed=scenario.seed, timeout_s=scenario.timeout_s,
                  api_key=extra.get("api_key"), **job_settings(scenario.client),
                  work_dir=state.run_dir / "drivers" / label / point.name)
    pool_before = read_pool_totals(target.url) if extra.get("pool_metrics") else None
    progress = Progress()
    interrupted: DriverInterrupted | None = None
    watch = PointWatch(job, scenario.client, state.run_dir / "probes" / label /
                       f"{point.name}.jsonl", scenario.cpu_affinity.get("driver"))
    telemetry = TelemetryRecorder(  # GPU, host CPU/RSS, /health and /metrics series
        clock, folder=state.run_dir / "telemetry", label=label, point=point.name, url=target.url,
        target_pids=[target.pid, *(c.pid for c in target.companions)],
        warmup_end=job.warmup_end)
    with ProgressPrinter(opts.out, label, job, progress, opts.progress_interval_s), watch, \
            telemetry:
        try:
            samples = driver.run(job, progress)
        except DriverInterrupted as exc:
            samples, interrupted = exc.samples, exc
    write_samples(state.run_dir / "samples" / label / f"{point.name}.jsonl", samples)
    append_records(state.run_dir / "telemetry" / f"{label}.jsonl", telemetry.records)
    entry = {"target": label, "target_name": tc.name, "driver": driver.name,
             "point": point.name, "load": point.describe(), "stream": workload.stream}
    entry |= summarize(samples, warmup_end=watch.warmup_end(progress), slo=scenario.slo)
    entry |= watch.notes(entry, progress)  # flags (driver_bound, ...), driver_stats, probe_ms
    entry["telemetry"] = telemetry.summary(samples, watch.warmup_end(progress))
    pool_after = read_pool_totals(target.url) if pool_before is not None else None
    if pool_before is not None and pool_after is not None:
        entry["proxy"] = pool_point(pool_before, pool_after)  # gateway: pool wait vs upstream
    state.points.append(entry)
    state.write_summary()
    if interrupted is not None:
        raise KeyboardInterrupt
    return samples


def point_line(entry: dict[str, Any]) -> str:
    req, thr = entry["requests"], entry["throughput"]
    ttft = entry.get("ttft_ms") or {}
    e2e = entry.get("e2e_ms") or {}

    def f(v: Any, spec: str = ".0f") -> str:
        return "—" if v is None else format(v, spec)

    return (f"  [{entry['target']} {entry['point']}] ok {req['ok']}/{req['total']}  "
            f"TTFT p50 {f(ttft.get('p50'))} p99 {f(ttft.get('p99'))} ms  "
            f"E2E p99 {f(e2e.get('p99'))} ms  {f(thr.get('output_tok_s'))} tok/s")


def run_scenario(scenario: Scenario, opts: RunOptions,
                 open_target: TargetOpener = open_registry_target) -> Path:
    """Run every target × load point of `scenario`; return the run folder."""
    out = opts.out
    git = git_info()
    run_dir = new_run_dir(opts.results_root, scenario.name, git.get("sha"))
    print(f"patternbench: run {run_dir}", file=out, flush=True)
    device = resolve_device(scenario.device)
    model, tokenizer = prepare_model(scenario.model)
    write_json(run_dir / "manifest.json",
               build_manifest(scenario, run_dir, opts, device, model, git))
    prompts = PromptFactory(tokenizer, scenario.workload, scenario.seed)
    state = RunState(run_dir=run_dir, scenario=scenario)
    clock = Clock()
    try:
        for tc in scenario.targets:
            print(f"patternbench: starting {tc.label} ({tc.name}) with model {scenario.model}",
                  file=out, flush=True)
            try:
                with pinned(scenario.cpu_affinity.get("target")):  # the target tree inherits it
                    target = open_target(tc, scenario, run_dir, opts)
            except LaunchError as exc:
                print(f"patternbench: {tc.label} failed to start: {exc}", file=out, flush=True)
                state.targets[tc.label] = {"name": tc.name, "options": dict(tc.options),
                                           "status": "failed", "error": str(exc)[-2000:]}
                state.write_summary()
                continue
            state.targets[tc.label] = {"name": tc.name, "options": dict(tc.options),
                                       "status": "ok", "startup_s": round(target.startup_s, 2),
                                       "error": None}
            drivers = scenario.drivers or (scenario.driver,)
            if len(drivers) > 1:  # one report series per target@driver
                info = state.targets.pop(tc.label)
                state.targets |= {run_label(tc.label, d, drivers): info for d in drivers}
            with target:
                for driver_name in drivers:
                    for point in scenario.points:
                        run_point(state, tc, target, point, prompts, clock, opts, driver_name)
                        print(point_line(state.points[-1]), file=out, flush=True)
    except KeyboardInterrupt:
        state.interrupted = True
        state.write_summary()
        print(f"patternbench: interrupted; kept what was measured in {run_dir}", file=out)
        raise
    state.write_summary()
    return run_dir
