"""The scenario's `[load]` table: its `kind` picks the keys it takes, read into `LoadPoint`s.

    [load]
    kind = "closed"             # closed: one point per concurrency
    concurrency = [1, 8, 32]    # (a lone level may be written without brackets)
    duration_s = 8
    warmup_s = 2

    [load]
    kind = "poisson"            # constant, poisson, gamma, ramp, spike: one point per rate
    rate_rps = [2, 8]

Each kind's keys are a dataclass here (`KINDS`; `capacity` is `harness.scenario.capacity`);
what shapes the arrivals (burstiness, the ramp's end, a trace's path…) lands in
`LoadPoint.params` as written and is checked by the arrival kind (`harness.arrivals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from harness.scenario.capacity import CapacityLoad, CapacitySpec, capacity_spec
from harness.scenario.decode import decode_variant, error, setting
from harness.scenario.types import LoadPoint


@dataclass(frozen=True)
class Window:
    """The keys of every kind: the measured window, its warm-up, and when a point ends.

    `min_requests` / `max_duration_s`: see `LoadPoint` (stationary kinds only)."""

    duration_s: float = setting(10.0, ge=0.1)
    warmup_s: float = setting(2.0, ge=0)
    max_requests: int = setting(0, ge=0)
    min_requests: int = setting(0, ge=0)
    max_duration_s: float | None = None  # ≥ duration_s; default max(60, duration_s)


@dataclass(frozen=True)
class Closed(Window):
    """closed: one point per concurrency; `ramp_up_s` staggers the streams' first requests."""

    concurrency: tuple[int, ...] = setting((1,), ge=1, nonempty=True)
    ramp_up_s: float | None = setting(None, ge=0)  # ≤ warmup_s; default warmup_s / 2


@dataclass(frozen=True)
class Rates(Window):
    """constant and poisson; the other open kinds add their shape."""

    rate_rps: tuple[float, ...] = setting((1.0,), ge=1e-6, nonempty=True)


@dataclass(frozen=True)
class Gamma(Rates):
    """gamma: `burstiness` (the arrival gaps' shape)."""

    burstiness: Any = None


@dataclass(frozen=True)
class Ramp(Rates):
    """ramp: from `rate_rps` to `end_rate_rps` over the point."""

    end_rate_rps: Any = None
    process: Any = None


@dataclass(frozen=True)
class Spike(Rates):
    """spike: `rate_rps`, and `spike_rate_rps` from `spike_start_s` for `spike_duration_s`."""

    spike_rate_rps: Any = None
    spike_start_s: Any = None
    spike_duration_s: Any = None
    process: Any = None


@dataclass(frozen=True)
class Trace(Window):
    """trace: one point replaying the arrivals of a file (`path`), `speed` times faster."""

    path: Any = None  # a relative path is read from the scenario's folder
    speed: Any = None


KINDS: dict[str, type[Window | CapacityLoad]] = {
    "closed": Closed, "constant": Rates, "poisson": Rates, "gamma": Gamma, "ramp": Ramp,
    "spike": Spike, "trace": Trace, "capacity": CapacityLoad}
MIN_REQUESTS_KINDS = ("closed", "constant", "poisson", "gamma")
# The keys read into LoadPoint's own fields or the search; a kind's other keys are its params.
_FIELDS = frozenset({"kind", "concurrency", "rate_rps", *(f.name for f in fields(Window)),
                     *(f.name for f in fields(CapacitySpec))})


def parse_load(raw: Any) -> tuple[tuple[LoadPoint, ...], CapacitySpec | None]:
    """The points of `[load]`, and the search when its kind is `capacity` (then the one point
    is the search's first probe, whose level `harness.run.capacity` varies)."""
    kind, load = decode_variant(KINDS, raw, "load", default="closed")
    params = {k: v for k, v in raw.items() if k not in _FIELDS}  # as written
    if isinstance(load, CapacityLoad):
        spec = capacity_spec(load)
        return (_first_probe(spec, load.max_requests, params),), spec
    if ("min_requests" in raw or "max_duration_s" in raw) and kind not in MIN_REQUESTS_KINDS:
        raise error("load.min_requests", f"works for kinds {', '.join(MIN_REQUESTS_KINDS)}, "
                                         f"not {kind!r}")
    longest = load.max_duration_s
    if longest is None:
        longest = max(60.0, load.duration_s)
    elif longest < load.duration_s:
        raise error("load.max_duration_s", f"must be ≥ load.duration_s ({load.duration_s:g}), "
                                           f"got {longest:g}")
    base = LoadPoint(name=kind, kind=kind, duration_s=load.duration_s, warmup_s=load.warmup_s,
                     max_requests=load.max_requests, params=params,
                     min_requests=load.min_requests, max_duration_s=longest)
    if isinstance(load, Closed):
        if load.ramp_up_s is not None and load.ramp_up_s > load.warmup_s:
            raise error("load.ramp_up_s", f"must not pass load.warmup_s ({load.warmup_s:g}), "
                                          f"got {load.ramp_up_s:g}: the warm-up must cover "
                                          f"the ramp")
        return tuple(replace(base, name=f"c{c}", concurrency=c) for c in load.concurrency), None
    if isinstance(load, Rates):
        return tuple(replace(base, name=f"r{r:g}", rate_rps=r) for r in load.rate_rps), None
    return (base,), None  # a trace: one point


def _first_probe(spec: CapacitySpec, max_requests: int, params: Mapping[str, Any]) -> LoadPoint:
    closed = spec.arrival == "closed"
    return LoadPoint(
        name=f"c{spec.start:g}" if closed else f"r{spec.start:g}", kind=spec.arrival,
        duration_s=spec.duration_s, warmup_s=spec.warmup_s,
        concurrency=int(spec.start) if closed else None,
        rate_rps=None if closed else spec.start, max_requests=max_requests, params=dict(params))
