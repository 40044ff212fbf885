"""How often a "95%" interval of a token metric holds the true value, when streams share steps.

A simulated continuous-batching server: `streams` closed-loop streams, each request
`output_tokens` long, all running sequences advanced by one decode step at a time. A step's
time is shared by every stream in it (lognormal, AR(1) on the log scale: a slow second slows
several steps in a row), plus a small per-token jitter; a finished stream's next request joins
the next step, whose time its prefill lengthens for everyone. That is what a real batch does to
ITL and TPOT: the gaps of one step are one draw, not `streams` independent ones.

For each trial (one measured window of `steps` steps) it computes the intervals patternbench
could store and counts how often each holds the true value (the metric of a very long run):

- `order`: the order-statistic interval of the pooled values (`harness.metrics.quantiles`,
  right for independent values);
- `sections`: sectioning over time alone, with the window's sections (`harness.metrics.sections`);
- `stored`: what summary.json stores (`widened`: the hull of the order statistics and the
  sectioned intervals), judged only where the effective count reaches the percentile's floor.

    .venv/bin/python scripts/interval_coverage.py --trials 400

prints one line per metric and method: coverage of the trials it judged, the median width, and
the share not judged (no interval; for `stored`, a percentile summary.json marks `too_few` on
the effective count, which the gate refuses). tests/unit/test_sections.py runs a smaller
version of it and asserts the stored ITL p50 interval covers ≥ 93%.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.metrics.distribution import Distribution
from harness.metrics.quantiles import percentile, quantile_ci
from harness.metrics.sections import Timed, quantile_interval, sections_for, widened

Interval = tuple[float, float] | None


@dataclass(frozen=True)
class Batch:
    """The simulated server: step times shared by every running stream."""

    streams: int = 16
    output_tokens: int = 64
    step_s: float = 0.020
    sigma: float = 0.25  # lognormal spread of a step's time
    rho: float = 0.5  # AR(1) correlation of consecutive steps' log time
    jitter: float = 0.02  # per-token relative noise on top of the step
    prefill_steps: float = 2.0  # a request's prefill adds this many decode steps' time to its step


@dataclass(frozen=True)
class Window:
    """One measured window: token gaps at their arrival time, and each request's TPOT at its
    completion."""

    itl: list[Timed]
    tpot: list[Timed]
    start: float
    end: float

    span_s: float | None = None  # the median request's duration, first token to last

    @property
    def k(self) -> int:
        """Sections, as `harness.metrics.requests` picks them for requests of `span_s`."""
        return sections_for(self.end - self.start, self.span_s)


def simulate(rng: random.Random, batch: Batch, steps: int, warmup: int = 100) -> Window:
    """`warmup` steps, then a measured window of `steps` steps: values observed in it."""
    t, x, start = 0.0, 0.0, 0.0
    left = [rng.randint(1, batch.output_tokens) for _ in range(batch.streams)]
    first = [0.0] * batch.streams
    last = [0.0] * batch.streams
    itl: list[Timed] = []
    tpot: list[Timed] = []
    for n in range(warmup + steps):
        if n == warmup:
            start = t
        x = batch.rho * x + math.sqrt(1 - batch.rho**2) * rng.gauss(0, batch.sigma)
        joining = [i for i in range(batch.streams) if left[i] == 0]
        # one step for everyone: the decode, plus the prefill of each request joining it
        step = batch.step_s * (math.exp(x) + batch.prefill_steps * len(joining))
        t += step
        for i in range(batch.streams):
            now = t + batch.step_s * batch.jitter * rng.gauss(0, 1)
            if left[i] == 0:  # a new request: its first token ends this step (no gap yet)
                left[i] = batch.output_tokens - 1
                first[i] = last[i] = now
                continue
            if n >= warmup:
                itl.append((now, now - last[i]))
            last[i] = now
            left[i] -= 1
            if left[i] == 0 and n >= warmup and first[i] > 0:
                tpot.append((now, (now - first[i]) / (batch.output_tokens - 1)))
    spans = sorted(v * (batch.output_tokens - 1) for _, v in tpot)
    return Window(itl, tpot, start, t, spans[len(spans) // 2] if spans else None)


def truth(batch: Batch, metric: str, stat: Callable[[list[float]], float], seed: int = 7,
          steps: int = 200_000) -> float:
    """The metric's statistic over one very long run."""
    window = simulate(random.Random(seed), batch, steps, warmup=batch.output_tokens * 4)
    values = [v for _, v in getattr(window, metric)]
    return stat(values)


def intervals(timed: Sequence[Timed], q: float, window: Window) -> dict[str, Interval]:
    """The three intervals; `stored` is exactly what summary.json holds (`widened`), None where
    it marks the percentile `too_few` on the values' effective count (the gate refuses it: not
    judged, rather than wrong)."""
    order = quantile_ci(sorted(v for _, v in timed), q)
    sections = quantile_interval(timed, q, window.start, window.end, window.k)
    name = f"p{round(100 * q)}"
    stored = widened(Distribution.of(v for _, v in timed), timed, window.start, window.end,
                     window.k)
    judged = stored is not None and name not in stored.too_few
    return {"order": order, "sections": sections,
            "stored": stored.ci95.get(name) if stored is not None and judged else None}


def coverage(batch: Batch, metric: str, q: float, trials: int, steps: int,
             seed: int = 1) -> dict[str, tuple[float, float, float]]:
    """Per method: (share of judged trials whose interval held the truth, median relative
    width, share of trials not judged: no interval, or `too_few` for the stored one)."""
    true = truth(batch, metric, lambda v: percentile(sorted(v), 100 * q))
    rng = random.Random(seed)
    held: dict[str, list[bool]] = {"order": [], "sections": [], "stored": []}
    widths: dict[str, list[float]] = {name: [] for name in held}
    for _ in range(trials):
        window = simulate(rng, batch, steps)
        timed = getattr(window, metric)
        for name, ci in intervals(timed, q, window).items():
            if ci is not None:
                held[name].append(ci[0] <= true <= ci[1])
                widths[name].append((ci[1] - ci[0]) / true)
    return {name: (sum(h) / len(h) if h else math.nan,
                   statistics.median(widths[name]) if widths[name] else math.nan,
                   1 - len(h) / trials) for name, h in held.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--steps", type=int, default=200, help="decode steps per window")
    parser.add_argument("--streams", type=int, default=16)
    args = parser.parse_args()
    batch = Batch(streams=args.streams)
    print(f"{args.streams} streams sharing each decode step, {args.steps} steps per window, "
          f"{args.trials} trials")
    print(f"{'metric':10s} {'method':9s} {'coverage':>9s} {'width':>7s} {'not judged':>11s}")
    for metric, q in (("itl", 0.5), ("itl", 0.9), ("itl", 0.99), ("tpot", 0.5), ("tpot", 0.9)):
        for name, (share, width, refused) in coverage(batch, metric, q, args.trials,
                                                     args.steps).items():
            print(f"{metric:4s} p{round(100 * q):<4d} {name:9s} {share:9.1%} {width:7.1%} "
                  f"{refused:11.1%}")


if __name__ == "__main__":
    main()
