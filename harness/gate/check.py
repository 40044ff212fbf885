"""Pure gate decisions: a run's summary (and a baseline's) in, one `GateResult` per gate and
matching target × point out, each with the numbers it was decided on.

Every gate is decided on the 95% interval of what it compares with its bound, or refused with
the reason (`cannot_judge`); nothing is decided on a bare number. `pass` when the whole interval
is within the bound, `fail` when the whole interval is beyond it, `inconclusive` when the bound
lies inside it. What the interval is (`harness.metrics.measured`):

- absolute: the value's own interval (within-run, sectioned; a counter is exact: a fact of
  this run; across repeats, the t-interval);
- in-run ratio: the interval of left / right from both sides' within-run intervals (one run:
  the machine's drift moves both);
- relative: the change from the baseline, which must carry run-to-run noise: a baseline saved
  from ≥ 3 runs (or repeats) gives a prediction interval; a single-run baseline is refused.

A failed run is never a pass: an interrupted run, and every target or point a gate's pattern
covers that failed, was skipped after a failure or never ran, is `cannot_judge` with its
reason; so is a summary written before within-run intervals (schema 4).

    results = check_gates(scenario.gates, summary, Baseline(base_summary, problem=None))
    [r.verdict for r in results]      # ["pass", "inconclusive", ...]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.gate.spec import Gate, Kind, MetricPath, Op
from harness.metrics.change import Change, higher_is_better
from harness.metrics.measured import Measured, change_between, measure, points_of
from harness.summary.record import RunSummary

Verdict = Literal["pass", "fail", "inconclusive", "cannot_judge", "skipped"]
_OPS: dict[Op, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
INTERVALS_SINCE = 5
"""The summary schema whose intervals see values move together (`harness.metrics.sections`)."""


@dataclass(frozen=True)
class GateResult:
    """One gate at one target × point (or pair of them, for a ratio).

    `value`: the metric (absolute, relative: this run's) or the ratio left / right; `ci` its 95%
    interval; `baseline`: the baseline's value (relative); `change_pct` / `change_ci_pct`: the
    change from the baseline in percent with its interval; `basis`: what the interval came from
    (within, exact, repeats, prediction, count, none); `reason`: why it could not be judged or
    was skipped; `fails_beyond_pct` (relative): the smallest change from the baseline, in the
    gate's bad direction, that an interval as wide as this one would call a failure — the
    regression size this gate detects at this run's noise."""

    gate: str
    subject: str
    kind: Kind
    expr: str
    verdict: Verdict
    value: float | None
    ci: tuple[float, float] | None = None
    baseline: float | None = None
    change_pct: float | None = None
    change_ci_pct: tuple[float, float] | None = None
    basis: str = "none"
    reason: str | None = None
    higher_is_better: bool = False
    fails_beyond_pct: float | None = None


@dataclass(frozen=True)
class Baseline:
    """The summary relative gates compare with; `problem` says why it cannot serve (another
    machine kind, model or setting), and `skip` turns that into `skipped` verdicts instead of
    `cannot_judge`."""

    summary: RunSummary | None
    problem: str | None = None
    skip: bool = False


def decide(op: Op, limit: float, lo: float, hi: float) -> Verdict:
    """pass / fail / inconclusive of `value op limit` given the interval [lo, hi] of value."""
    ok = _OPS[op]
    ends = ok(lo, limit), ok(hi, limit)
    return "pass" if all(ends) else "fail" if not any(ends) else "inconclusive"


def check_gates(gates: Sequence[Gate], summary: RunSummary,
                baseline: Baseline | None = None) -> list[GateResult]:
    """Every gate against `summary` (relative ones against `baseline`), in order."""
    out: list[GateResult] = []
    for gate in gates:
        out.extend(check_gate(gate, summary, baseline))
    return out


def check_gate(gate: Gate, summary: RunSummary, baseline: Baseline | None) -> list[GateResult]:
    """One gate at each target × point its path covers."""
    refusal = _run_refusal(summary)
    if refusal is not None:
        return [_unjudged(gate, str(gate.left), refusal)]
    if gate.kind == "ratio":
        return _ratio(gate, summary)
    results = [_unjudged(gate, str(gate.left.at(t, p)), why)
               for t, p, why in _not_measured(gate.left, summary)]
    places = _matches(gate.left, summary)
    if not places and not results:
        return [_unjudged(gate, str(gate.left), f"missing metric: no point matches "
                                                f"{gate.left.target}.{gate.left.point}")]
    for target, point in places:
        path = gate.left.at(target, point)
        current = measure(points_of(summary, target, point), path.field, path.sub)
        if gate.kind == "absolute":
            results.append(_absolute(gate, path, _named(current, path)))
        else:
            results.append(_relative(gate, path, _named(current, path), baseline))
    return results


def _run_refusal(summary: RunSummary) -> str | None:
    if summary.interrupted:
        return "the run was interrupted (^C) before its end: a partial run is never a pass"
    if summary.schema_version < INTERVALS_SINCE:
        return (f"summary schema {summary.schema_version} has no intervals that see values move "
                "together (schema 5): rerun the scenario")
    return None


def _not_measured(path: MetricPath, summary: RunSummary) -> list[tuple[str, str, str]]:
    """(target, point, why) for each target × point `path` covers that was not measured: a
    target that failed (at start: every point; later: its failing and skipped points). An
    interrupted run, whose `never_ran` points are the rest, is refused as a whole."""
    out: list[tuple[str, str, str]] = []
    for label, run in summary.targets.items():
        if path.target not in ("*", label) or run.status != "failed":
            continue
        points: list[str] = [p for p in (run.failed_point, *run.skipped) if p is not None]
        why = f"target {label} failed: {run.error or 'no reason recorded'}"
        if not points:
            out.append((label, path.point, why + " (it never started)"))
        out += [(label, p, why) for p in points if path.point in ("*", p)]
    return out


def _named(m: Measured, path: MetricPath) -> Measured:
    """`m` with its problem naming the path (measure speaks of the point only)."""
    if m.problem and m.problem.startswith("missing metric: no such point"):
        return Measured(m.value, problem=f"missing metric: no point {path.target}.{path.point}")
    return m


def _matches(path: MetricPath, summary: RunSummary) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for p in summary.points:
        if path.target in ("*", p.target) and path.point in ("*", p.point):
            seen[(p.target, p.point)] = None
    return list(seen)


def _absolute(gate: Gate, path: MetricPath, m: Measured) -> GateResult:
    ci = m.interval()
    if m.problem or m.value is None or ci is None:
        return _unjudged(gate, str(path), m.problem or "no interval", m.value)
    return GateResult(gate.name, str(path), gate.kind, gate.expr,
                      decide(gate.op, gate.limit, *ci), m.value, ci, basis=m.basis,
                      higher_is_better=higher_is_better(str(path)))


def _relative(gate: Gate, path: MetricPath, m: Measured,
              baseline: Baseline | None) -> GateResult:
    if baseline is None or baseline.summary is None or baseline.problem:
        reason = (baseline.problem if baseline else None) or "no baseline: save one with " \
            "`patternbench baseline save RUN RUN RUN` or pass --baseline"
        return _unjudged(gate, str(path), reason, m.value, skip=bool(baseline and baseline.skip))
    base = measure(points_of(baseline.summary, path.target, path.point), path.field, path.sub)
    change, problem = change_between(base, m, same_run=False)
    problem = m.problem or (f"baseline: {base.problem}" if base.problem else None) or problem
    if problem or change is None or change.lo is None or change.hi is None:
        return _unjudged(gate, str(path), problem or "no interval on the change", m.value)
    return GateResult(gate.name, str(path), gate.kind, gate.expr,
                      decide(gate.op, gate.limit, change.lo, change.hi), m.value, m.interval(),
                      baseline=base.value, change_pct=change.pct,
                      change_ci_pct=change.pct_interval, basis=change.basis,
                      higher_is_better=higher_is_better(str(path)),
                      fails_beyond_pct=detectable(gate, change))


def detectable(gate: Gate, change: Change) -> float | None:
    """The change (%) beyond which an interval of this one's widths lies wholly past the bound:
    for `<= +10%`, a change whose interval's lower end passes +10%."""
    if change.lo is None or change.hi is None or not 0 < change.lo <= change.ratio <= change.hi:
        return None
    if gate.op in ("<", "<="):
        return 100 * (gate.limit * change.ratio / change.lo - 1)
    return 100 * (gate.limit * change.ratio / change.hi - 1)


def _ratio(gate: Gate, summary: RunSummary) -> list[GateResult]:
    assert gate.right is not None
    left, right = gate.left, gate.right
    points = ([p for _, p in _matches(left, summary)] if left.point == "*" else [left.point])
    results = []
    for point in points or [left.point]:
        lp = left.at(left.target, point)
        rp = right.at(right.target, point if right.point == "*" else right.point)
        results.append(_one_ratio(gate, lp, rp, summary))
    return results


def _one_ratio(gate: Gate, lp: MetricPath, rp: MetricPath, summary: RunSummary) -> GateResult:
    subject = f"{lp} / {rp}"
    failed = [why for path in (lp, rp) for t, p, why in _not_measured(path, summary)
              if (t, p) == (path.target, path.point)]
    if failed:
        return _unjudged(gate, subject, failed[0])
    a = _named(measure(points_of(summary, lp.target, lp.point), lp.field, lp.sub), lp)
    b = _named(measure(points_of(summary, rp.target, rp.point), rp.field, rp.sub), rp)
    change, problem = change_between(b, a, same_run=True)
    problem = a.problem or b.problem or problem
    if problem or change is None or change.lo is None or change.hi is None:
        return _unjudged(gate, subject, problem or "no interval on the ratio")
    return GateResult(gate.name, subject, gate.kind, gate.expr,
                      decide(gate.op, gate.limit, change.lo, change.hi), change.ratio,
                      (change.lo, change.hi), basis=change.basis,
                      higher_is_better=gate.op in (">", ">="))


def _unjudged(gate: Gate, subject: str, reason: str, value: float | None = None,
              skip: bool = False) -> GateResult:
    return GateResult(gate.name, subject, gate.kind, gate.expr,
                      "skipped" if skip else "cannot_judge", value, reason=reason,
                      higher_is_better=higher_is_better(subject))
