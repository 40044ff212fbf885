"""When requests are due: a schedule computed from a seeded RNG before the load starts.

`closed` has no schedule (a request is due when a slot frees up). Open-loop kinds give the send
offsets, in seconds from the start of the load point, for the whole point (warm-up included):

- `constant`: one request every 1/`rate_rps` s, from 0.
- `poisson`: exponential gaps of mean 1/`rate_rps` (seeded).
- `gamma`: gamma gaps of mean 1/`rate_rps`; `burstiness` b sets shape k = 1/b (scale b/rate), so
  the squared coefficient of variation of the gaps is b. b = 1 is Poisson, b > 1 is burstier,
  b < 1 more regular (GuideLLM's convention; vLLM's `--burstiness` is the shape itself, 1/b).
- `ramp`: the rate changes linearly from `rate_rps` at 0 to `end_rate_rps` at the end of the point.
- `spike`: `rate_rps`, stepping to `spike_rate_rps` from `spike_start_s` (offset in the point,
  default: a third into the measured window) for `spike_duration_s` (default a third of it).
- `trace`: replay a JSONL file (`path`), one object per line with `offset_s`, `prompt_tokens`,
  `output_tokens`; `speed` (default 1) divides the offsets. Entries past the point are dropped.

Ramp and spike place arrivals on the rate curve r(t) by inverting its integral Λ(t): request n is
due when Λ(t) = n (`process = "uniform"`, the default) or when Λ(t) equals the n-th partial sum of
unit exponentials (`process = "poisson"`, a non-homogeneous Poisson process).
`max_requests` (when > 0) keeps the first arrivals only. Which extras each kind accepts is
validated when the scenario is read (`harness.scenario.points.KINDS`).

Example::

    >>> p = LoadPoint("r2", "constant", duration_s=2, warmup_s=0, rate_rps=2)
    >>> schedule(p, seed=1)
    [0.0, 0.5, 1.0, 1.5]
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.decode import ScenarioError
from harness.scenario.types import LoadPoint

RateCurve = list[tuple[float, float]]  # (offset s, rate req/s) breakpoints, linear in between


@dataclass(frozen=True)
class Arrival:
    """One due request: its offset (s) from the point start and, for traces, its token counts."""

    offset_s: float
    prompt_tokens: int | None = None
    output_tokens: int | None = None


def schedule(point: LoadPoint, seed: int) -> list[float] | None:
    """Offsets (s) at which requests are due, or None for closed-loop points."""
    arrivals = plan(point, seed)
    return None if arrivals is None else [a.offset_s for a in arrivals]


def plan(point: LoadPoint, seed: int) -> list[Arrival] | None:
    """Every due request of an open-loop point, in order; None for closed-loop points.

    Raises `ScenarioError` for missing or malformed shape parameters (or trace file).
    """
    if point.kind == "closed":
        return None
    total = point.warmup_s + point.duration_s
    rng = random.Random(seed)
    if point.kind == "trace":
        arrivals = read_trace(point)
    else:
        rate = _positive(point.rate_rps, "load.rate_rps")
        if point.kind == "constant":
            offsets = [i / rate for i in range(_count_below(total, rate))]
        elif point.kind == "poisson":
            offsets = _renewal(total, lambda: rng.expovariate(rate))
        elif point.kind == "gamma":
            b = _positive(point.params.get("burstiness", 1.0), "load.burstiness")
            offsets = _renewal(total, lambda: rng.gammavariate(1.0 / b, b / rate))
        elif point.kind in ("ramp", "spike"):
            offsets = _on_curve(rate_curve(point), total, rng, point.params.get("process"))
        else:
            raise ScenarioError(f"arrival kind {point.kind!r} has no schedule")
        arrivals = [Arrival(t) for t in offsets]
    if point.max_requests:
        arrivals = arrivals[: point.max_requests]
    return arrivals


def rate_curve(point: LoadPoint) -> RateCurve:
    """The intended rate over the point as breakpoints (a step repeats its time).

    Poisson and gamma give their mean rate; a trace gives 1-second bins of its arrivals.
    """
    total = point.warmup_s + point.duration_s
    if point.kind == "closed":
        raise ScenarioError("a closed-loop point has no arrival rate")
    if point.kind == "trace":
        return _binned(read_trace(point), total)
    rate = _positive(point.rate_rps, "load.rate_rps")
    if point.kind == "ramp":
        end = _number(point.params.get("end_rate_rps"), "load.end_rate_rps")
        return [(0.0, rate), (total, end)]
    if point.kind == "spike":
        spike = _number(point.params.get("spike_rate_rps"), "load.spike_rate_rps")
        start, end = spike_window(point)
        return [(0.0, rate), (start, rate), (start, spike), (end, spike), (end, rate),
                (total, rate)]
    return [(0.0, rate), (total, rate)]


def spike_window(point: LoadPoint) -> tuple[float, float]:
    """A spike point's (start, end) offsets, s from the point's start (warm-up included), the
    end cut at the point's end; `ScenarioError` when the spike starts past the point."""
    total = point.warmup_s + point.duration_s
    start = _number(point.params.get("spike_start_s", point.warmup_s + point.duration_s / 3),
                    "load.spike_start_s")
    length = _number(point.params.get("spike_duration_s", point.duration_s / 3),
                     "load.spike_duration_s")
    if start >= total:
        raise ScenarioError(f"load.spike_start_s {start:g} is past the point ({total:g} s)")
    return start, min(start + length, total)


def read_trace(point: LoadPoint) -> list[Arrival]:
    """The trace file's arrivals within the point, sorted by offset, `speed` applied."""
    raw_path = point.params.get("path")
    if not isinstance(raw_path, str) or not raw_path:
        raise ScenarioError("load.path must name the trace JSONL file of a trace point")
    speed = _positive(point.params.get("speed", 1.0), "load.speed")
    path = Path(raw_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScenarioError(f"load.path: cannot read trace {path}: {exc.strerror}") from exc
    total = point.warmup_s + point.duration_s
    out: list[Arrival] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
            offset = float(row["offset_s"]) / speed
            prompt, output = int(row["prompt_tokens"]), int(row["output_tokens"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ScenarioError(f"{path}:{n}: expected an object with offset_s, prompt_tokens, "
                                f"output_tokens ({type(exc).__name__}: {exc})") from exc
        if offset < 0 or prompt < 1 or output < 1:
            raise ScenarioError(f"{path}:{n}: offset_s must be >= 0 and token counts >= 1")
        if offset < total:
            out.append(Arrival(offset, prompt, output))
    out.sort(key=lambda a: a.offset_s)
    return out


def _count_below(total: float, rate: float) -> int:
    """How many i >= 0 have i / rate < total, robust to float rounding of total * rate."""
    n = max(0, math.floor(total * rate) - 1)
    while n / rate < total:
        n += 1
    return n


def _renewal(total: float, gap: Callable[[], float]) -> list[float]:
    offsets: list[float] = []
    t = gap()
    while t < total:
        offsets.append(t)
        t += gap()
    return offsets


def _on_curve(curve: RateCurve, total: float, rng: random.Random,
              process: object) -> list[float]:
    """Offsets where the integrated rate reaches 0, 1, 2, ... (or unit-exponential sums)."""
    if process not in (None, "uniform", "poisson"):
        raise ScenarioError(f"load.process must be 'uniform' or 'poisson', got {process!r}")
    poisson = process == "poisson"
    offsets: list[float] = []
    target = rng.expovariate(1.0) if poisson else 0.0
    area = 0.0  # Λ at the start of the current segment
    for (t0, r0), (t1, r1) in itertools.pairwise(curve):
        span = t1 - t0
        if span <= 0:
            continue
        seg_area = (r0 + r1) * span / 2
        while target < area + seg_area:
            offsets.append(t0 + _solve(r0, r1, span, target - area))
            target += rng.expovariate(1.0) if poisson else 1.0
        area += seg_area
    return [t for t in offsets if t < total]


def _solve(r0: float, r1: float, span: float, need: float) -> float:
    """x in [0, span] with r0·x + (r1 − r0)·x²/(2·span) = need (numerically stable root)."""
    k = (r1 - r0) / (2 * span)
    if need <= 0:
        return 0.0
    root = math.sqrt(max(r0 * r0 + 4 * k * need, 0.0))
    return min(span, 2 * need / (r0 + root)) if r0 + root > 0 else span


def _binned(arrivals: list[Arrival], total: float) -> RateCurve:
    bins = max(1, math.ceil(total))
    counts = [0] * bins
    for a in arrivals:
        counts[min(int(a.offset_s), bins - 1)] += 1
    curve: RateCurve = []
    for i, c in enumerate(counts):
        curve += [(float(i), float(c)), (float(min(i + 1, total)), float(c))]
    return curve


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScenarioError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _positive(value: object, name: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise ScenarioError(f"{name} must be > 0, got {value!r}")
    return number
