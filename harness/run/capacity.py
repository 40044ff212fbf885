"""Capacity under the SLO: the highest load level at which a stated share of requests meets
every SLO limit, found by bracketing then bisection, and answered as an interval.

    cap = search(spec, slo={"ttft_ms": 1000}, share=0.9, measure=run_at_level)
    cap.last_pass.level, cap.first_fail.level   # e.g. 6 and 8: capacity is 6, 8 fails

`measure(level)` runs one ordinary load point at that level (a concurrency for a closed loop,
a rate in req/s for an open one) and returns its `PointSummary`, or None when the run was
interrupted. A level passes when its goodput is known and `goodput.fraction >= share`.

Bracketing starts at `spec.start` and multiplies the level by `spec.factor` while it passes (up
to `spec.max_level`); after the first failure it bisects between the last passing and the first
failing level until they are `spec.resolution` apart. The first point always runs; a later one
starts only if it would end within `spec.budget_s` of the search's start (each point is
estimated at its warm-up + measured window). The levels are pure arithmetic: this module runs
nothing (`harness.run.runner` runs each level as a load point).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from harness.scenario.capacity import CapacitySpec
from harness.scenario.types import LoadPoint
from harness.summary.record import Capacity, CapacityLevel, PointSummary, StopReason

Measure = Callable[[float], PointSummary | None]


def passes(point: PointSummary, share: float) -> bool:
    """Whether `share` of the point's counted requests met every SLO limit (goodput known)."""
    good = point.goodput
    if good is None or good.unknown is not None or good.fraction is None:
        return False
    return point.requests.total > 0 and good.fraction >= share


def level_of(point: PointSummary) -> float | None:
    """The point's load level: its concurrency, else its rate (req/s); None for neither."""
    if point.load.concurrency is not None:
        return float(point.load.concurrency)
    return point.load.rate_rps


def capacity_level(point: PointSummary, level: float, share: float) -> CapacityLevel:
    good = point.goodput
    return CapacityLevel(level=level, point=point.point, passed=passes(point, share),
                         good_fraction=None if good is None else good.fraction,
                         goodput_req_s=None if good is None else good.req_s)


def next_level(spec: CapacitySpec, last_pass: CapacityLevel | None,
               first_fail: CapacityLevel | None) -> float | None:
    """The next level to measure; None when the interval is resolved or max_level passed."""
    if last_pass is None:
        return None  # the first level failed: nothing below it is searched
    low = last_pass.level
    if first_fail is None:
        if low >= spec.max_level:
            return None
        up = _rounded(spec, low * spec.factor, math.ceil)
        return min(max(up, low + (1 if spec.arrival == "closed" else 0)), spec.max_level)
    high = first_fail.level
    if high - low <= spec.resolution:
        return None
    middle = _rounded(spec, (low + high) / 2, math.floor)
    return middle if low < middle < high else None


def _rounded(spec: CapacitySpec, level: float, whole: Callable[[float], int]) -> float:
    """A concurrency rounded to a whole number by `whole`, a rate to 3 significant digits."""
    return float(whole(level)) if spec.arrival == "closed" else float(f"{level:.3g}")


def search(spec: CapacitySpec, slo: Mapping[str, float], share: float, measure: Measure,
           clock: Callable[[], float] = time.monotonic) -> Capacity:
    """Bracket then bisect (see the module docstring); every measured level is in `levels`."""
    began = clock()
    levels: list[CapacityLevel] = []
    last_pass: CapacityLevel | None = None
    first_fail: CapacityLevel | None = None
    level: float | None = spec.start
    stopped: StopReason = "resolved"
    while level is not None:
        if levels and clock() - began + spec.estimate_s > spec.budget_s:
            stopped = "budget"
            break
        point = measure(level)
        if point is None:
            stopped = "interrupted"
            break
        measured = capacity_level(point, level, share)
        levels.append(measured)
        if measured.passed:
            last_pass = measured
        else:
            first_fail = measured
        level = next_level(spec, last_pass, first_fail)
        if level is None:
            stopped = ("fails_at_start" if last_pass is None
                       else "max_level" if first_fail is None else "resolved")
    return Capacity(axis="concurrency" if spec.axis == "concurrency" else "rate_rps",
                    arrival=spec.arrival, slo=dict(slo), share=share, last_pass=last_pass,
                    first_fail=first_fail, stopped=stopped,
                    elapsed_s=round(clock() - began, 2), budget_s=spec.budget_s,
                    levels=tuple(levels))


def capacity_point(template: LoadPoint, spec: CapacitySpec, level: float) -> LoadPoint:
    """The scenario's first probe point moved to `level` (named like a sweep's: c6, r2.5)."""
    if spec.arrival == "closed":
        return replace(template, name=f"c{level:g}", concurrency=int(level), rate_rps=None)
    return replace(template, name=f"r{level:g}", concurrency=None, rate_rps=level)


def sweep_interval(points: Iterable[PointSummary], share: float
                   ) -> tuple[CapacityLevel | None, CapacityLevel | None, int]:
    """A plain sweep's capacity: (last passing level below the first failing one, that first
    failing level, levels measured); a level with several points (repeats) passes when all do.
    """
    by_level: dict[float, list[PointSummary]] = {}
    for point in points:
        level = level_of(point)
        if level is not None and point.goodput is not None:
            by_level.setdefault(level, []).append(point)
    last_pass: CapacityLevel | None = None
    for level in sorted(by_level):
        group = by_level[level]
        failing = [p for p in group if not passes(p, share)]
        measured = capacity_level(failing[0] if failing else group[0], level, share)
        if failing:
            return last_pass, measured, len(by_level)
        last_pass = measured
    return last_pass, None, len(by_level)
