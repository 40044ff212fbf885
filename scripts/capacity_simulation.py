"""How often the capacity search reports the true capacity, on a simulated server (issue 22).

The simulated server meets the SLO for a request with probability p(c) at c concurrent
streams: p(c) = 1 − 0.1 · exp(`steepness` · (c − `knee`)), so with the defaults (knee 7.5,
steepness 0.5, share 0.9) the true capacity is 7: p(7) = 0.922, p(8) = 0.872 — close enough
that a bare share reads 8 as a pass about as often as 7. Each point serves
`per_stream` × c × its duration's requests, at least the search's `requests_needed` (the builtin
driver's min_requests; a level measured again is twice as long), and its share drifts from
point to point by `drift` (a machine's run-to-run noise). Every trial is one real
`harness.run.capacity.search` against it, with its points built as the runner builds them
(goodput with its Wilson interval).

    .venv/bin/python scripts/capacity_simulation.py --trials 500

prints how often the reported capacity (the last level that passed) is exactly the truth and
within ±1 of it, the distribution of what was reported, and the points a search took.
tests/unit/test_capacity_simulation.py runs it with fewer trials and asserts ≥ 80% within ±1.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, replace

from harness.metrics.quantiles import wilson
from harness.metrics.requests import summarize
from harness.run.capacity import requests_needed, search
from harness.scenario.capacity import CapacitySpec
from harness.summary.record import Goodput, Load, PointSummary, Requests

SLO = {"ttft_ms": 1000.0}


@dataclass(frozen=True)
class Server:
    """The simulated server (see the module docstring)."""

    knee: float = 7.5
    steepness: float = 0.5
    per_stream: float = 1.0  # requests per stream per second of window
    drift: float = 0.03
    duration_s: float = 4.0

    def p(self, c: float) -> float:
        return max(0.0, 1 - 0.1 * math.exp(self.steepness * (c - self.knee)))

    def truth(self, share: float) -> int:
        """The highest concurrency whose share meets `share`."""
        return max((c for c in range(1, 200) if self.p(c) >= share), default=0)

    def point(self, rng: random.Random, level: float, attempt: int,
              min_requests: int = 0) -> PointSummary:
        """A point as the builtin driver ends it: its window, or later once `min_requests`
        were sent (`harness.run.capacity.requests_needed`)."""
        n = max(round(self.per_stream * level * self.duration_s), min_requests) * 2 ** attempt
        p = min(1.0, max(0.0, self.p(level) + rng.gauss(0, self.drift)))
        good = sum(rng.random() < p for _ in range(n))
        metrics = replace(
            summarize([]), requests=Requests(ok=n, http_error=0, refused=0, timeout=0,
                                             truncated=0, conn_error=0, total=n),
            goodput=Goodput(slo=SLO, good_requests=good, req_s=good / self.duration_s,
                            fraction=good / n, counted=n, ci95={"fraction": wilson(good, n)}))
        return PointSummary.of(metrics, target="sim", target_name="sim", driver="builtin",
                               point=f"c{level:g}", load=Load(kind="closed",
                                                              concurrency=int(level)),
                               stream=True, flags=(), max_dispatch_lag_ms=10.0)


def trial(server: Server, spec: CapacitySpec, share: float, rng: random.Random
          ) -> tuple[int, int]:
    """(reported capacity, points measured) of one search."""
    points = 0
    enough = requests_needed(share)

    def measure(level: float, attempt: int) -> PointSummary:
        nonlocal points
        points += 1
        return server.point(rng, level, attempt, enough)

    cap = search(spec, SLO, share, measure)
    return (int(cap.last_pass.level) if cap.last_pass else 0), points


def simulate(trials: int, server: Server, spec: CapacitySpec, share: float = 0.9,
             seed: int = 1) -> dict[str, object]:
    rng = random.Random(seed)
    results = [trial(server, spec, share, rng) for _ in range(trials)]
    truth = server.truth(share)
    reported = Counter(r for r, _ in results)
    return {"truth": truth, "exact": reported[truth] / trials,
            "within_one": sum(n for r, n in reported.items() if abs(r - truth) <= 1) / trials,
            "reported": dict(sorted(reported.items())),
            "points_median": statistics.median(p for _, p in results)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args()
    spec = CapacitySpec(max_level=32, budget_s=10_000, retries=args.retries)
    out = simulate(args.trials, Server(), spec)
    print(f"true capacity {out['truth']}: reported exactly {out['exact']:.0%}, within ±1 "
          f"{out['within_one']:.0%} of {args.trials} searches; median points per search "
          f"{out['points_median']}")
    print("reported:", out["reported"])


if __name__ == "__main__":
    main()
