"""The `[load]` table of a capacity search (`kind = "capacity"`): what to vary and within what.

    [load]
    kind = "capacity"
    arrival = "closed"      # closed: vary the concurrency; constant/poisson/gamma: the rate
    start = 1               # the first level measured
    max_level = 64          # never measure above it
    factor = 2              # bracketing: each passing level is multiplied by it
    resolution = 1          # bisection stops when first fail − last pass <= resolution
    budget_s = 120          # the search starts no point that would end past it
    retries = 2             # an unsure level is measured again, twice as long, up to this often
    duration_s = 5
    warmup_s = 1.5

    [slo]
    ttft_ms = 1000
    share = 0.9             # a level passes when >= 90% of its requests meet every limit,
                            # with 95% confidence (harness.run.capacity.judge)

`resolution` defaults to 1 request for a closed loop and to a tenth of `start` req/s for an open
one. The search itself is `harness.run.capacity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.scenario.decode import error, setting

CAPACITY_ARRIVALS = ("closed", "constant", "poisson", "gamma")
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
    retries: int = 2

    @property
    def axis(self) -> str:
        """The load field the search varies: `concurrency` or `rate_rps`."""
        return "concurrency" if self.arrival == "closed" else "rate_rps"

    @property
    def estimate_s(self) -> float:
        return self.warmup_s + self.duration_s


@dataclass(frozen=True)
class CapacityLoad:
    """The `[load]` keys of `kind = "capacity"`: the search (`CapacitySpec`), and what its probe
    points keep (`max_requests`, and `ramp_up_s` / `burstiness` in their params, as written)."""

    arrival: str = setting("closed", one_of=CAPACITY_ARRIVALS)
    start: float = setting(1.0, ge=1e-6)  # closed: a whole number ≥ 1
    max_level: float = setting(64.0, ge=1e-6)  # ≥ start
    factor: float = setting(2.0, ge=1.1)
    resolution: float | None = setting(None, ge=1e-6)  # closed: ≥ 1; default 1 / start ÷ 10
    budget_s: float = setting(120.0, ge=0.1)
    retries: int = setting(2, ge=0)
    duration_s: float = setting(5.0, ge=0.1)
    warmup_s: float = setting(1.5, ge=0)
    max_requests: int = setting(0, ge=0)
    ramp_up_s: float | None = setting(None, ge=0)
    burstiness: Any = None  # checked by the gamma arrival (`harness.arrivals`)


def capacity_spec(load: CapacityLoad) -> CapacitySpec:
    """The search a decoded capacity `[load]` asks for; `ScenarioError` for a level that a
    closed loop cannot run (not a whole number of streams) or a range upside down."""
    closed = load.arrival == "closed"
    if closed and (load.start < 1 or not load.start.is_integer()):
        raise error("load.start", f"must be a whole number ≥ 1 for arrival 'closed' (a "
                                  f"concurrency), got {load.start:g}")
    if load.max_level < load.start:
        raise error("load.max_level", f"must be ≥ load.start ({load.start:g}), "
                                      f"got {load.max_level:g}")
    if closed and not load.max_level.is_integer():
        raise error("load.max_level", f"must be a whole number for arrival 'closed' (a "
                                      f"concurrency), got {load.max_level:g}")
    resolution = load.resolution
    if resolution is None:
        resolution = 1.0 if closed else load.start / 10
    elif closed and resolution < 1:
        raise error("load.resolution", f"must be ≥ 1 for arrival 'closed', got {resolution:g}")
    return CapacitySpec(arrival=load.arrival, start=load.start, max_level=load.max_level,
                        factor=load.factor, resolution=resolution, budget_s=load.budget_s,
                        duration_s=load.duration_s, warmup_s=load.warmup_s,
                        retries=load.retries)


def check_slo(slo: Mapping[str, float], share: float, search: bool) -> None:
    """`[slo] share` is a share of requests; a capacity search needs a limit to search against."""
    if not 0 < share <= 1:
        raise error("slo.share", f"must be in (0, 1], got {share:g}")
    if search and not slo:
        raise error("slo", "load.kind 'capacity' needs at least one [slo] limit to search "
                           "against, e.g. ttft_ms = 1000")
