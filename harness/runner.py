"""Run a scenario: for each target, start it, drive each load point, store samples and metrics.

The runner only wires stages together: launcher → driver → samples → metrics → results. It
writes `summary.json` after every load point, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness import __version__
from harness.drivers import DriverInterrupted, LoadJob, Progress, get_driver
from harness.launcher import LaunchError, TargetProcess, start_target
from harness.metrics import SCHEMA_VERSION, summarize
from harness.results import git_info, machine, new_run_dir, now_iso, versions, write_json
from harness.samples import Clock, Sample, write_samples
from harness.scenario import LoadPoint, Scenario, TargetConfig
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
        "servebench": __version__,
        "scenario": dict(scenario.raw) | {"resolved": _resolved(scenario)},
        "scenario_file": opts.scenario_file,
        "git": git,
        "versions": versions(),
        "machine": machine(),
        "device": device,
        "model": model,
        "seeds": {"scenario": scenario.seed},
        "driver": scenario.driver,
    }


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


def run_point(state: RunState, tc: TargetConfig, target: TargetProcess, point: LoadPoint,
              prompts: PromptFactory, clock: Clock, opts: RunOptions) -> list[Sample]:
    scenario = state.scenario
    driver = get_driver(scenario.driver)
    job = LoadJob(target=tc.label, base_url=target.url, model_name=scenario.model, point=point,
                  workload=scenario.workload, prompts=prompts, clock=clock,
                  point_start=clock.now(), seed=scenario.seed, timeout_s=scenario.timeout_s)
    progress = Progress()
    interrupted: DriverInterrupted | None = None
    with ProgressPrinter(opts.out, tc.label, job, progress, opts.progress_interval_s):
        try:
            samples = driver.run(job, progress)
        except DriverInterrupted as exc:
            samples, interrupted = exc.samples, exc
    write_samples(state.run_dir / "samples" / tc.label / f"{point.name}.jsonl", samples)
    entry = {"target": tc.label, "target_name": tc.name, "driver": driver.name,
             "point": point.name, "load": point.describe(), "stream": scenario.workload.stream}
    entry |= summarize(samples, warmup_end=job.warmup_end, slo=scenario.slo)
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
                 open_target: TargetOpener = open_local_target) -> Path:
    """Run every target × load point of `scenario`; return the run folder."""
    out = opts.out
    git = git_info()
    run_dir = new_run_dir(opts.results_root, scenario.name, git.get("sha"))
    print(f"servebench: run {run_dir}", file=out, flush=True)
    device = resolve_device(scenario.device)
    model, tokenizer = prepare_model(scenario.model)
    write_json(run_dir / "manifest.json",
               build_manifest(scenario, run_dir, opts, device, model, git))
    prompts = PromptFactory(tokenizer, scenario.workload, scenario.seed)
    state = RunState(run_dir=run_dir, scenario=scenario)
    clock = Clock()
    try:
        for tc in scenario.targets:
            print(f"servebench: starting {tc.label} ({tc.name}) with model {scenario.model}",
                  file=out, flush=True)
            try:
                target = open_target(tc, scenario, run_dir, opts)
            except LaunchError as exc:
                print(f"servebench: {tc.label} failed to start: {exc}", file=out, flush=True)
                state.targets[tc.label] = {"name": tc.name, "options": dict(tc.options),
                                           "status": "failed", "error": str(exc)[-2000:]}
                state.write_summary()
                continue
            state.targets[tc.label] = {"name": tc.name, "options": dict(tc.options),
                                       "status": "ok", "startup_s": round(target.startup_s, 2),
                                       "error": None}
            with target:
                for point in scenario.points:
                    run_point(state, tc, target, point, prompts, clock, opts)
                    print(point_line(state.points[-1]), file=out, flush=True)
    except KeyboardInterrupt:
        state.interrupted = True
        state.write_summary()
        print(f"servebench: interrupted; kept what was measured in {run_dir}", file=out)
        raise
    state.write_summary()
    return run_dir
