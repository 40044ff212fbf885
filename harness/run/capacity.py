"""Capacity under the SLO: the highest load level at which a stated share of requests meets
every SLO limit, found by bracketing then bisection, judged with confidence, answered as an
interval.

    cap = search(spec, slo={"ttft_ms": 1000}, share=0.9, measure=run_at_level)
    cap.last_pass.level, cap.first_fail.level   # e.g. 6 and 8: capacity is 6, 8 fails

`measure(level, attempt)` runs one ordinary load point at that level (a concurrency for a closed
loop, a rate in req/s for an open one; attempt 0, then 1, 2 … for a level measured again, each
twice as long) and returns its `PointSummary`, or None when the run was interrupted. With the
builtin driver a point also runs until it sent `requests_needed(share)` requests (70 for 90%):
fewer cannot show a share with confidence, so a short point at one stream would always be
unsure.

A level is judged (`judge`) on the 95% interval of its within-SLO share (goodput's `ci95`: the
Wilson interval ∪ the sectioned one, since misses come in bursts), not on the bare share:
**pass** when the interval is at or above the share, **fail** when it is below, **unsure**
when it holds the share — then it is measured again, twice as long, up to `spec.retries` times,
and a level still unsure counts as a fail (the capacity stated is the last *confident* pass).
A point that cannot say is **unjudged** (the load driver could not keep up, arrivals were
dropped, goodput unknown): the search stops there with a lower bound. A target that died or
stopped answering **died**: the search stops, and there is no capacity (`target_died`).

Bracketing starts at `spec.start` and multiplies the level by `spec.factor` while it passes (up
to `spec.max_level`); after the first fail it bisects between the last pass and the first fail
until they are `spec.resolution` apart (a closed loop's levels are whole numbers; an open
loop's midpoints are kept exact). The first point always runs; a later one starts only if it
would end within `spec.budget_s` of the search's start, each point estimated at the longer of
its warm-up + window and the mean wall time the points so far took (start-up, drain). The
levels are pure arithmetic: this module runs nothing (`harness.run.runner` runs each level as
a load point).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from harness.metrics.quantiles import wilson
from harness.scenario.capacity import CapacitySpec
from harness.scenario.types import LoadPoint
from harness.summary.record import Capacity, CapacityLevel, Judgement, PointSummary, StopReason

Measure = Callable[[float, int], PointSummary | None]
UNJUDGED_FLAGS = {"driver_bound": "the load driver could not keep up",
                  "dropped": "the driver dropped arrivals it could not send"}


@dataclass(frozen=True)
class Judged:
    """A point's judgement against the share, with the interval it was decided on."""

    judged: Judgement
    ci: tuple[float, float] | None = None
    why: str | None = None


def judge(point: PointSummary, share: float) -> Judged:
    """pass / fail / unsure / unjudged / died (see the module docstring)."""
    if point.failure is not None:
        return Judged("died", why=point.failure.reason)
    for flag, why in UNJUDGED_FLAGS.items():
        if flag in point.flags:
            return Judged("unjudged", why=f"{why} at {point.point}")
    good = point.goodput
    if good is None or good.unknown is not None or good.fraction is None:
        reason = good.unknown if good is not None and good.unknown else "no goodput"
        return Judged("unjudged", why=f"{reason} at {point.point}")
    ci = good.ci95.get("fraction") or _binomial(point)
    if ci is None:
        return Judged("unjudged", why=f"no interval of the within-SLO share at {point.point}")
    if ci[0] >= share:
        return Judged("pass", ci)
    return Judged("fail" if ci[1] < share else "unsure", ci)


def _binomial(point: PointSummary) -> tuple[float, float] | None:
    """Wilson's interval for a summary written before goodput had its own (schema 4): the
    requests it was over are its good ones / its fraction, or every counted one at 0."""
    good = point.goodput
    if good is None or good.fraction is None:
        return None
    n = good.counted or (round(good.good_requests / good.fraction) if good.fraction
                         else point.requests.total)
    return wilson(good.good_requests, n)


def passes(point: PointSummary, share: float) -> bool:
    """Whether the point passes with confidence (`judge`)."""
    return judge(point, share).judged == "pass"


def level_of(point: PointSummary) -> float | None:
    """The point's load level: its concurrency, else its rate (req/s); None for neither."""
    if point.load.concurrency is not None:
        return float(point.load.concurrency)
    return point.load.rate_rps


def measured_again(point: PointSummary) -> bool:
    """Whether the point is a capacity level's second or later try (c6.2, r2.5.3: named after
    the level by `capacity_point`), not its first or a sweep's point (c6, r2.5)."""
    level = level_of(point)
    if level is None:
        return False
    first = level_name(level, closed=point.load.concurrency is not None)
    return point.point.startswith(first + ".") and point.point[len(first) + 1:].isdigit()


def level_name(level: float, closed: bool) -> str:
    """A level's point name, as a sweep names it: c6 (concurrency), r2.5 (req/s)."""
    return f"c{level:g}" if closed else f"r{level:g}"


def capacity_level(point: PointSummary, level: float, share: float,
                   tries: int = 1) -> CapacityLevel:
    verdict = judge(point, share)
    good = point.goodput
    return CapacityLevel(level=level, point=point.point, passed=verdict.judged == "pass",
                         good_fraction=None if good is None else good.fraction,
                         goodput_req_s=None if good is None else good.req_s,
                         judged=verdict.judged, good_ci=verdict.ci, tries=tries,
                         why=verdict.why)


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
    """A concurrency rounded to a whole number by `whole`; a rate kept exact (to 1e-6 req/s,
    so that float noise does not name a level apart)."""
    return float(whole(level)) if spec.arrival == "closed" else round(level, 6)


def search(spec: CapacitySpec, slo: Mapping[str, float], share: float, measure: Measure,
           clock: Callable[[], float] = time.monotonic) -> Capacity:
    """Bracket then bisect (see the module docstring); every measured level is in `levels`."""
    began = clock()
    levels: list[CapacityLevel] = []
    last_pass: CapacityLevel | None = None
    first_fail: CapacityLevel | None = None
    level: float | None = spec.start
    stopped: StopReason = "resolved"
    points = 0
    while level is not None:
        estimate = max(spec.estimate_s, (clock() - began) / points) if points else 0.0
        if points and clock() - began + estimate > spec.budget_s:
            stopped = "budget"
            break
        measured, tried = _level(spec, level, share, measure)
        points += tried
        if measured is None:
            stopped = "interrupted"
            break
        levels.append(measured)
        if measured.judged in ("died", "unjudged"):
            stopped = "target_died" if measured.judged == "died" else "unjudged"
            break
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


def _level(spec: CapacitySpec, level: float, share: float,
           measure: Measure) -> tuple[CapacityLevel | None, int]:
    """The level measured until it is judged (an unsure one again, up to `spec.retries`);
    (None when interrupted, how many points were run)."""
    measured: CapacityLevel | None = None
    for attempt in range(1 + spec.retries):
        point = measure(level, attempt)
        if point is None:
            return None, attempt + 1
        measured = capacity_level(point, level, share, tries=attempt + 1)
        if measured.judged != "unsure":
            break
    return measured, (measured.tries if measured else 0)


def requests_needed(share: float) -> int:
    """Requests a level needs before it can pass with confidence and a miss or two: twice the
    fewest whose Wilson lower bound reaches `share` when every one met the SLO (0.9: 2 × 35)."""
    n = 1
    while (bound := wilson(n, n)) is not None and bound[0] < share and n < 100_000:
        n += 1
    return 2 * n


def capacity_point(template: LoadPoint, spec: CapacitySpec, level: float,
                   attempt: int = 0, min_requests: int = 0) -> LoadPoint:
    """The scenario's first probe point moved to `level` (named like a sweep's: c6, r2.5); a
    level measured again is twice as long each time and named apart (c6.2, c6.3).
    `min_requests` (the builtin driver's `LoadPoint.min_requests`, doubled with the duration):
    the window goes on until that many requests were sent (`requests_needed`)."""
    name = level_name(level, closed=spec.arrival == "closed")
    longer = replace(template, name=name + (f".{attempt + 1}" if attempt else ""),
                     duration_s=template.duration_s * 2 ** attempt,
                     min_requests=min_requests * 2 ** attempt)
    if spec.arrival == "closed":
        return replace(longer, concurrency=int(level), rate_rps=None)
    return replace(longer, concurrency=None, rate_rps=level)


def sweep_interval(points: Iterable[PointSummary], share: float
                   ) -> tuple[CapacityLevel | None, CapacityLevel | None, int]:
    """A plain sweep's capacity: (the highest level that passes with no level below it that
    fails, the lowest level above it that does not pass, levels measured). A level with several
    points (repeats) passes when all do, and is read from its first point that does not. A
    level that is only unsure below one that passes is no bound: its few requests could not
    show the share, and the higher load showed it (latency does not fall with load)."""
    by_level: dict[float, list[PointSummary]] = {}
    for point in points:
        level = level_of(point)
        if level is not None and point.goodput is not None:
            by_level.setdefault(level, []).append(point)
    judged = {}
    for level in sorted(by_level):
        group = by_level[level]
        failing = [p for p in group if not passes(p, share)]
        judged[level] = capacity_level(failing[0] if failing else group[0], level, share)
    last_pass: CapacityLevel | None = None
    for measured in judged.values():
        if measured.judged not in ("pass", "unsure"):
            break  # a fail, an unjudged point or a death bounds everything above it
        if measured.passed:
            last_pass = measured
    above = [m for lv, m in judged.items() if not m.passed
             and (last_pass is None or lv > last_pass.level)]
    return last_pass, (above[0] if above else None), len(by_level)
