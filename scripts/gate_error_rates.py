"""Measure how often patternbench's run-to-run decisions are wrong, on this machine (issue 21).

For one scenario (its own `[gates]`), every run a real `patternbench run` (real target process,
real driver), in this order so that the machine's drift falls on every kind alike:

1. a baseline saved from `--baseline-runs` unchanged runs (`baseline save RUN RUN RUN`);
2. interleaved rounds of: one unchanged run (A/A), and one run per injected regression (A/B):
   `PATTERNBENCH_INJECT_SLOWDOWN` = each `--slowdowns` factor (every token that much slower,
   the scenario and model unchanged), and with `--halve OPTION`, the target's OPTION halved;
3. compare pages between consecutive unchanged runs, with the baseline's spread as noise.

Each unchanged and slowed run is judged by `patternbench gate`'s own path (`run_gate`: the
saved baseline, the settings check, exit 0 / 1 / 2). A halved option is a changed setting, which
the gate command rightly refuses (exit 2); its runs are judged by the same decisions without
that guard (`check_gates` against the baseline's summary), to measure what the intervals see.

    flock -x /tmp/patternbench-measure.lock .venv/bin/python scripts/gate_error_rates.py \\
        scenarios/gate_sim.toml --reruns 10 --halve workers --out /tmp/gate_sim.json

prints one line per run and the tables: exit codes of unchanged runs (false failures = exit 1,
inconclusive or unjudged = exit 2) and of each regression (detected = exit 1), and the cells a
compare page flags between unchanged runs. `--out` writes every run's results as JSON.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.compare import compare, noise_from
from harness.gate.baseline import load_baseline, save_baseline
from harness.gate.check import Baseline, GateResult, check_gates
from harness.gate.command import GateOptions, exit_code, run_gate
from harness.report.run_data import load_run
from harness.run.runner import RunOptions, run_scenario
from harness.scenario.load import load_scenario
from harness.scenario.types import Scenario
from targets.model.slowdown import ENV


@contextmanager
def slowdown(factor: float) -> Iterator[None]:
    """Target processes started inside inherit PATTERNBENCH_INJECT_SLOWDOWN = `factor`."""
    before = os.environ.get(ENV)
    os.environ[ENV] = str(factor)
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = before


def halved(scenario: Scenario, option: str) -> Scenario:
    """`scenario` with `option` of its first target halved (at least 1)."""
    first = scenario.targets[0]
    value = int(first.options[option])
    changed = replace(first, options={**first.options, option: max(1, value // 2)})
    return replace(scenario, targets=(changed, *scenario.targets[1:]))


def run(scenario: Scenario, root: Path, factor: float = 1.0) -> Path:
    with slowdown(factor):
        return run_scenario(scenario, RunOptions(results_root=root / "results",
                                                 reports_root=root / "reports",
                                                 out=io.StringIO()))


def line(label: str, code: int, results: list[GateResult] | tuple[GateResult, ...]) -> str:
    def part(r: GateResult) -> str:
        if r.change_pct is not None:
            lo, hi = r.change_ci_pct or (float("nan"), float("nan"))
            return f"{r.subject} {r.change_pct:+.1f}% [{lo:+.1f}, {hi:+.1f}] {r.verdict}"
        return f"{r.subject} {r.verdict}" + (f" ({r.reason})" if r.reason else "")
    shown = [part(r) for r in results if r.kind != "absolute" or r.verdict != "pass"]
    return f"{label:14s} exit {code}  " + "; ".join(shown)


def experiment(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    scenario = load_scenario(args.scenario)
    if args.baseline:  # reuse a saved one: where `patternbench gate` looks for it
        saved_path = root / "baselines" / scenario.name / args.baseline.name
        saved_path.parent.mkdir(parents=True)
        shutil.copyfile(args.baseline, saved_path)
    else:
        bases = [run(scenario, root) for _ in range(args.baseline_runs)]
        saved_path = save_baseline(bases, root / "baselines")
        if args.save_baseline:
            print(f"baseline: {save_baseline(bases, args.save_baseline)}", flush=True)
    saved = load_baseline(saved_path)
    args.baseline_runs = saved.runs
    kinds = ["unchanged", *(f"slowdown {f:g}" for f in args.slowdowns)]
    kinds += [f"{args.halve} halved"] if args.halve else []
    codes: dict[str, Counter[int]] = {k: Counter() for k in kinds}
    unchanged: list[Path] = []
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for i in range(args.reruns):
        for kind in kinds:
            if kind.endswith("halved"):
                folder = run(halved(scenario, args.halve), root)
                results = check_gates(scenario.gates, load_run(folder).summary,
                                      Baseline(saved.summary))
                code = exit_code(results)
            else:
                factor = float(kind.split()[1]) if kind.startswith("slowdown") else 1.0
                folder = run(scenario, root, factor)
                code, results = judge(folder, scenario, root)
                if kind == "unchanged":
                    unchanged.append(folder)
            codes[kind][code] += 1
            rows.append({"round": i, "kind": kind, "exit": code,
                         "results": [r.__dict__ for r in results]})
            print(line(f"{kind} {i + 1}", code, results), flush=True)
    pages = compare_pages(unchanged, noise_from(saved.summary), scenario.name)
    return {"scenario": scenario.name, "baseline_runs": args.baseline_runs,
            "reruns": args.reruns, "seconds": round(time.monotonic() - started),
            "codes": {k: dict(c) for k, c in codes.items()}, "compare_pages": pages,
            "runs": rows}


def judge(folder: Path, scenario: Scenario, root: Path) -> tuple[int, list[GateResult]]:
    """`patternbench gate`'s decision on a run (exit 0 and nothing without [gates])."""
    if not scenario.gates:
        return 0, []
    report = run_gate(GateOptions(run=folder, baselines_root=root / "baselines"))
    return report.exit_code, list(report.results)


def compare_pages(folders: list[Path], noise: Any, scenario: str) -> list[dict[str, Any]]:
    """Each consecutive pair of unchanged runs compared: cells judged and flagged."""
    out = []
    for a, b in itertools.pairwise(folders):
        c = compare([load_run(a), load_run(b)], {scenario: noise})
        flagged = c.deltas[c.deltas["direction"].isin(["improved", "regressed"])]
        out.append({"cells": len(c.deltas), "judged": int((c.deltas["direction"]
                                                             != "unknown").sum()),
                    "flagged": len(flagged), "which": [f"{r.target}.{r.point} {r.metric} "
                                                       f"{r.pct:+.1f}%"
                                                       for r in flagged.itertuples()],
                    "headline": c.headline})
    return out


def print_tables(result: dict[str, Any]) -> None:
    print(f"\n{result['scenario']}: baseline from {result['baseline_runs']} runs, "
          f"{result['reruns']} rounds, {result['seconds']} s")
    print(f"{'runs':22s} {'n':>3s} {'exit 0':>7s} {'exit 1':>7s} {'exit 2':>7s}")
    for kind, counts in result["codes"].items():
        n = sum(counts.values())
        print(f"{kind:22s} {n:3d} {counts.get(0, 0):7d} {counts.get(1, 0):7d} "
              f"{counts.get(2, 0):7d}")
    pages = result["compare_pages"]
    if pages:
        flagged = [p["flagged"] for p in pages]
        print(f"compare of unchanged runs: {len(pages)} pages of {pages[0]['cells']} cells, "
              f"flagged per page {flagged} (mean {sum(flagged) / len(flagged):.2f}), judged "
              f"{[p['judged'] for p in pages]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help="a scenario with [gates], e.g. scenarios/gate_sim.toml")
    parser.add_argument("--reruns", type=int, default=10, help="rounds of A/A and A/B runs")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--slowdowns", type=lambda s: [float(x) for x in s.split(",") if x],
                        default=[1.2, 1.5], help="injected slowdown factors (A/B; '' for none)")
    parser.add_argument("--baseline", type=Path,
                        help="judge against this saved baseline instead of saving a new one")
    parser.add_argument("--save-baseline", type=Path,
                        help="also save the baseline runs under this root (results/baselines)")
    parser.add_argument("--halve", help="a target option to halve as another A/B (workers)")
    parser.add_argument("--out", type=Path, help="write every result as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-error-rates-") as tmp:
        result = experiment(args, Path(tmp))
    print_tables(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
