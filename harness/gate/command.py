"""`patternbench gate RUN [--baseline PATH]` and `patternbench baseline save RUN`.

The gates come from the run's own manifest (the scenario as it ran), the baseline from PATH (a
run folder or a saved baseline file) or, by default, `results/baselines/<scenario>/<kind>.json`
for this run's machine kind. The exit code: 0 every gate passed (or was skipped), 1 a gate
failed (a regression), 2 a gate could not be judged (missing metric, `too_few` values,
driver-bound point, no baseline, a baseline from another machine kind or model) or was
inconclusive (its interval straddles the bound), unless `inconclusive` says pass or fail.

`skip_relative_on_mismatch`: when the baseline is missing or from another machine kind or
model, relative gates are `skipped` (reported, not judged) instead of `cannot_judge`, so a CI
whose runner differs from the committed baseline's machine is still gated by its in-run ratios
and absolute bounds and does not go red on the mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.gate.baseline import (
    BASELINES,
    BaselineError,
    SavedBaseline,
    find_baseline,
    load_baseline,
    machine_kind,
    mismatch,
    read_run,
    saved_kinds,
)
from harness.gate.check import Baseline, GateResult, check_gates
from harness.gate.outputs import GateReport
from harness.gate.spec import parse_gates
from harness.scenario.decode import ScenarioError

Inconclusive = Literal["pass", "fail", "judge"]


@dataclass(frozen=True)
class GateOptions:
    """Plain values for one gate decision (`inconclusive`: "judge" = exit 2)."""

    run: Path
    baseline: Path | None = None
    baselines_root: Path = BASELINES
    inconclusive: Inconclusive = "judge"
    skip_relative_on_mismatch: bool = False


def run_gate(opts: GateOptions) -> GateReport:
    """Decide every gate of `opts.run`; `BaselineError` / `ScenarioError` when the run or its
    gates cannot be read."""
    summary, manifest = read_run(opts.run)
    gates = parse_gates(manifest.scenario.gates or {})
    if not gates:
        raise ScenarioError(f"{opts.run}: its scenario has no [gates]")
    kind = machine_kind(manifest)
    needs_baseline = any(g.kind == "relative" for g in gates)
    saved, problem = _baseline(opts, summary.scenario, kind) if needs_baseline else (None, None)
    if saved is not None and problem is None:
        problem = mismatch(saved, kind, manifest.model.hash, manifest.scenario.resolved)
    baseline = Baseline(saved.summary if saved else None, problem,
                        skip=opts.skip_relative_on_mismatch)
    results = tuple(check_gates(gates, summary, baseline))
    return GateReport(run=summary.run, baseline=str(saved.source) if saved else None,
                      machine_kind=kind, exit_code=exit_code(results, opts.inconclusive),
                      results=results)


def exit_code(results: Sequence[GateResult], inconclusive: Inconclusive = "judge") -> int:
    """1 when a gate failed, else 2 when one could not be judged, else 0."""
    verdicts = {r.verdict for r in results}
    if "inconclusive" in verdicts and inconclusive != "judge":
        verdicts.discard("inconclusive")
        verdicts.add("fail" if inconclusive == "fail" else "pass")
    if "fail" in verdicts:
        return 1
    return 2 if verdicts & {"inconclusive", "cannot_judge"} else 0


def _baseline(opts: GateOptions, scenario: str,
              kind: str) -> tuple[SavedBaseline | None, str | None]:
    if opts.baseline is not None:
        return load_baseline(opts.baseline), None
    path = find_baseline(opts.baselines_root, scenario, kind)
    if path is None:
        others = saved_kinds(opts.baselines_root, scenario)
        saved = f"; saved kinds: {', '.join(others)}" if others else ""
        return None, (f"no baseline for scenario {scenario!r} on machine kind {kind} under "
                      f"{opts.baselines_root}{saved}")
    try:
        return load_baseline(path), None
    except BaselineError as exc:
        return None, str(exc)
