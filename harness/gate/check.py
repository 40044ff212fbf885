"""Pure gate decisions: a run's summary (and a baseline's) in, one `GateResult` per gate and
matching target × point out, each with the numbers it was decided on.

Every kind is decided the same way, on the interval of what it compares with its bound:
`pass` when the whole 95% interval is within the bound, `fail` when the whole interval is
beyond it, `inconclusive` when the bound lies inside it; a figure without an interval (a
counter, a mean) is compared as it is. An absolute gate compares the value's own interval,
an in-run ratio the interval of left / right, a relative gate the interval of the change
current / baseline (`harness.metrics.change`: per-request percentile intervals, Poisson on the
requests behind a rate, or Welch across `repeats`).

    results = check_gates(scenario.gates, summary, Baseline(base_summary, problem=None))
    [r.verdict for r in results]      # ["pass", "inconclusive", ...]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.gate.measure import Measured, change_between, measure, points_of
from harness.gate.spec import Gate, Kind, MetricPath, Op
from harness.metrics.change import Change, higher_is_better
from harness.summary.record import RunSummary

Verdict = Literal["pass", "fail", "inconclusive", "cannot_judge", "skipped"]
_OPS: dict[Op, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class GateResult:
    """One gate at one target × point (or pair of them, for a ratio).

    `value`: the metric (absolute, relative: this run's) or the ratio left / right; `ci` its 95%
    interval; `baseline`: the baseline's value (relative); `change_pct` / `change_ci_pct`: the
    change from the baseline in percent with its interval; `basis`: what the interval came from
    (quantile, repeats, count, none); `reason`: why it could not be judged or was skipped."""

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


@dataclass(frozen=True)
class Baseline:
    """The summary relative gates compare with; `problem` says why it cannot serve (another
    machine kind or model), and `skip` turns that into `skipped` verdicts instead of
    `cannot_judge`."""

    summary: RunSummary | None
    problem: str | None = None
    skip: bool = False


def decide(op: Op, limit: float, value: float, lo: float | None, hi: float | None) -> Verdict:
    """pass / fail / inconclusive of `value op limit` given the interval [lo, hi] of value."""
    ok = _OPS[op]
    if lo is None or hi is None:
        return "pass" if ok(value, limit) else "fail"
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
    """One gate at each target × point its path matches."""
    if gate.kind == "ratio":
        return _ratio(gate, summary)
    places = _matches(gate.left, summary)
    if not places:
        return [_unjudged(gate, str(gate.left), f"missing metric: no point matches "
                                                f"{gate.left.target}.{gate.left.point}")]
    results = []
    for target, point in places:
        path = gate.left.at(target, point)
        current = measure(points_of(summary, target, point), path)
        if gate.kind == "absolute":
            results.append(_absolute(gate, path, current))
        else:
            results.append(_relative(gate, path, current, baseline))
    return results


def _matches(path: MetricPath, summary: RunSummary) -> list[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for p in summary.points:
        if path.target in ("*", p.target) and path.point in ("*", p.point):
            seen[(p.target, p.point)] = None
    return list(seen)


def _absolute(gate: Gate, path: MetricPath, m: Measured) -> GateResult:
    if m.problem or m.value is None:
        return _unjudged(gate, str(path), m.problem or "missing metric", m.value)
    ci = m.interval(path.sub)
    verdict = decide(gate.op, gate.limit, m.value, *(ci or (None, None)))
    return GateResult(gate.name, str(path), gate.kind, gate.expr, verdict, m.value, ci,
                      basis=_basis_of(m, ci), higher_is_better=higher_is_better(str(path)))


def _relative(gate: Gate, path: MetricPath, m: Measured,
              baseline: Baseline | None) -> GateResult:
    if baseline is None or baseline.summary is None:
        reason = (baseline.problem if baseline else None) or "no baseline: save one with " \
            "`patternbench baseline save RUN` or pass --baseline"
        return _unjudged(gate, str(path), reason, m.value, skip=bool(baseline and baseline.skip))
    if baseline.problem:
        return _unjudged(gate, str(path), baseline.problem, m.value, skip=baseline.skip)
    base = measure(points_of(baseline.summary, path.target, path.point), path)
    problem = m.problem or (f"baseline: {base.problem}" if base.problem else None)
    change = change_between(base, m, path.sub)
    if problem or change is None:
        return _unjudged(gate, str(path), problem or "missing metric", m.value)
    return _changed(gate, str(path), m, change)


def _changed(gate: Gate, subject: str, m: Measured, change: Change) -> GateResult:
    verdict = decide(gate.op, gate.limit, change.ratio, change.lo, change.hi)
    return GateResult(gate.name, subject, gate.kind, gate.expr, verdict, m.value,
                      m.interval(gate.left.sub), baseline=change.before,
                      change_pct=change.pct, change_ci_pct=change.pct_interval,
                      basis=change.basis, higher_is_better=higher_is_better(subject))


def _ratio(gate: Gate, summary: RunSummary) -> list[GateResult]:
    assert gate.right is not None
    left, right = gate.left, gate.right
    points = ([p for _, p in _matches(left, summary)] if left.point == "*" else [left.point])
    results = []
    for point in points or [left.point]:
        lp = left.at(left.target, point)
        rp = right.at(right.target, point if right.point == "*" else right.point)
        subject = f"{lp} / {rp}"
        a = measure(points_of(summary, lp.target, lp.point), lp)
        b = measure(points_of(summary, rp.target, rp.point), rp)
        change = change_between(b, a, lp.sub) if lp.field == rp.field and lp.sub == rp.sub \
            else _plain(b, a)
        problem = a.problem or b.problem
        if problem or change is None:
            results.append(_unjudged(gate, subject, problem or "missing metric"))
            continue
        verdict = decide(gate.op, gate.limit, change.ratio, change.lo, change.hi)
        ci = (change.lo, change.hi) if change.lo is not None and change.hi is not None else None
        results.append(GateResult(gate.name, subject, gate.kind, gate.expr, verdict,
                                  change.ratio, ci, basis=change.basis,
                                  higher_is_better=gate.op in (">", ">=")))
    return results


def _plain(before: Measured, after: Measured) -> Change | None:
    """after / before without an interval (two different statistics)."""
    if before.value is None or after.value is None:
        return None
    return Change(before.value, after.value, None, None, "none")


def _basis_of(m: Measured, ci: tuple[float, float] | None) -> str:
    if ci is None:
        return "none"
    return "repeats" if len(m.repeats) >= 2 else "quantile" if m.dist else "count"


def _unjudged(gate: Gate, subject: str, reason: str, value: float | None = None,
              skip: bool = False) -> GateResult:
    return GateResult(gate.name, subject, gate.kind, gate.expr,
                      "skipped" if skip else "cannot_judge", value, reason=reason,
                      higher_is_better=higher_is_better(subject))
