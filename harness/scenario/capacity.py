"""The `[load]` table of a capacity search (`kind = "capacity"`): what to vary and within what.

    [load]
    kind = "capacity"
    arrival = "closed"      # closed: vary the concurrency; constant/poisson/gamma: the rate
    start = 1               # the first level measured
    max_level = 64          # never measure above it
    factor = 2              # bracketing: each passing level is multiplied by it
    resolution = 1          # bisection stops when first fail − last pass <= resolution
    budget_s = 120          # the search starts no point that would end past it
    duration_s = 5
    warmup_s = 1.5

    [slo]
    ttft_ms = 1000
    share = 0.9             # a level passes when >= 90% of its requests meet every limit

`resolution` defaults to 1 request for a closed loop and to a tenth of `start` req/s for an open
one. The search itself is `harness.run.capacity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.scenario.values import ScenarioError
from harness.scenario.values import number as _num

CAPACITY_ARRIVALS = ("closed", "constant", "poisson", "gamma")
CAPACITY_KEYS = frozenset({"kind", "arrival", "start", "max_level", "factor", "resolution",
                           "budget_s", "duration_s", "warmup_s", "max_requests", "burstiness",
                           "ramp_up_s"})
DEFAULT_SHARE = 0.9
"""Share of a point's requests that must meet every SLO limit when `[slo] share` is not set:
the "for 90% of requests" of the usual capacity statement."""


@dataclass(frozen=True)
class CapacitySpec:
    """How to search: the arrival kind per probe point, the level range, the time budget.

    Levels are concurrencies (closed) or rates in req/s (the open kinds); `estimate_s` is the
    wall time one point takes (warm-up + measured window), used to keep within `budget_s`.
    """

    arrival: str = "closed"
    start: float = 1.0
    max_level: float = 64.0
    factor: float = 2.0
    resolution: float = 1.0
    budget_s: float = 120.0
    duration_s: float = 5.0
    warmup_s: float = 1.5

    @property
    def axis(self) -> str:
        """The load field the search varies: `concurrency` or `rate_rps`."""
        return "concurrency" if self.arrival == "closed" else "rate_rps"

    @property
    def estimate_s(self) -> float:
        return self.warmup_s + self.duration_s


def parse_capacity(raw: Mapping[str, Any]) -> tuple[CapacitySpec, dict[str, Any]]:
    """The spec of a `kind = "capacity"` `[load]` table, and the `[load]` keys its probe points
    keep (max_requests, ramp_up_s, burstiness); `ScenarioError` naming the bad key."""
    unknown = sorted(set(raw) - CAPACITY_KEYS)
    if unknown:
        raise ScenarioError(f"unknown [load] keys {unknown} for kind 'capacity'; expected some "
                            f"of {sorted(CAPACITY_KEYS)}")
    arrival = str(raw.get("arrival", "closed"))
    if arrival not in CAPACITY_ARRIVALS:
        raise ScenarioError(f"load.arrival must be one of {CAPACITY_ARRIVALS}, got {arrival!r}")
    closed = arrival == "closed"
    start = _num(raw.get("start", 1), "load.start", 1.0 if closed else 1e-6)
    spec = CapacitySpec(
        arrival=arrival, start=start,
        max_level=_num(raw.get("max_level", 64), "load.max_level", start),
        factor=_num(raw.get("factor", 2), "load.factor", 1.1),
        resolution=_num(raw.get("resolution", 1 if closed else start / 10), "load.resolution",
                        1.0 if closed else 1e-6),
        budget_s=_num(raw.get("budget_s", 120), "load.budget_s", 0.1),
        duration_s=_num(raw.get("duration_s", 5.0), "load.duration_s", 0.1),
        warmup_s=_num(raw.get("warmup_s", 1.5), "load.warmup_s"))
    if closed and (not float(spec.start).is_integer() or not spec.max_level.is_integer()):
        raise ScenarioError("load.start and load.max_level are concurrencies for arrival "
                            "'closed': whole numbers")
    keep = {k: v for k, v in raw.items() if k in ("max_requests", "ramp_up_s", "burstiness")}
    return spec, keep


def capacity_of(raw: Any, slo: Mapping[str, float], share: float) -> CapacitySpec | None:
    """The search of a `kind = "capacity"` `[load]`, else None; checks `[slo]` and its share."""
    if not 0 < share <= 1:
        raise ScenarioError(f"slo.share must be in (0, 1], got {share:g}")
    if not isinstance(raw, Mapping) or raw.get("kind") != "capacity":
        return None
    if not slo:
        raise ScenarioError("load.kind 'capacity' needs at least one [slo] limit to search "
                            "against, e.g. ttft_ms = 1000")
    return parse_capacity(raw)[0]
