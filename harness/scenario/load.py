"""Reading a scenario file: TOML → checked values → the frozen `harness.scenario.types`.

    scenario = load_scenario("scenarios/default.toml")

Every error is a one-line `ScenarioError` naming the field (`harness.scenario.values`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.gate.spec import parse_gates
from harness.scenario.capacity import DEFAULT_SHARE, capacity_of, parse_capacity
from harness.scenario.client import parse_affinity as _parse_affinity
from harness.scenario.client import parse_client as _parse_client
from harness.scenario.fault import parse_fault
from harness.scenario.targets import APIS, parse_targets
from harness.scenario.types import ARRIVAL_KINDS, SEED_MODES, LoadPoint, Scenario, Workload
from harness.scenario.values import ScenarioError, parse_drivers
from harness.scenario.values import boolean as _bool
from harness.scenario.values import integer as _int
from harness.scenario.values import number as _num
from harness.scenario.values import table as _table
from harness.scenario.workload import check_sessions, workload_values


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file. Raises `ScenarioError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from exc
    return parse_scenario(data, default_name=path.stem, base_dir=path.parent)


def parse_scenario(data: Mapping[str, Any], *, default_name: str = "scenario",
                   base_dir: Path | None = None) -> Scenario:
    """Validate `data`; a relative trace `path` resolves against `base_dir` when given."""
    known = {"name", "description", "model", "seed", "driver", "workload", "load", "targets",
             "timeout_s", "slo", "gates", "device", "client", "cpu_affinity", "repeats", "fault"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"unknown top-level keys {unknown}; expected some of {sorted(known)}")
    workload = _parse_workload(data.get("workload", {}), base_dir)
    points = _parse_points(data.get("load", {}))
    if base_dir is not None:
        points = tuple(_resolve_trace(p, base_dir) for p in points)
    drivers = parse_drivers(data.get("driver", "builtin"))
    others = sorted(set(drivers) - {"builtin"})
    if points[0].min_requests and others:
        raise ScenarioError(f"load.min_requests is run by the builtin driver only, not {others}")
    check_sessions(workload.turns, points[0].kind, others)
    targets = parse_targets(data.get("targets", []))
    slo = {str(k): _num(v, f"slo.{k}") for k, v in _table(data.get("slo", {}), "slo").items()}
    share = slo.pop("share", DEFAULT_SHARE)
    capacity = capacity_of(data.get("load", {}), slo, share)
    gates = parse_gates(_table(data.get("gates", {}), "gates"))
    return Scenario(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")),
        model=str(data.get("model", "tiny")),
        seed=_int(data.get("seed", 0), "seed"),
        driver=drivers[0],
        drivers=drivers,
        client=_parse_client(data.get("client", {})),
        cpu_affinity=_parse_affinity(data.get("cpu_affinity", {})),
        fault=parse_fault(data.get("fault"), len(points), capacity is not None, drivers),
        workload=workload,
        points=points,
        targets=targets,
        timeout_s=_num(data.get("timeout_s", 300.0), "timeout_s", 0.001),
        slo=slo,
        gates=gates,
        device=str(data.get("device", "auto")),
        raw=dict(data),
        repeats=_int(data.get("repeats", 1), "repeats", 1),
        capacity=capacity,
        slo_share=share,
    )


# The [load] extras each arrival kind reads (they land in LoadPoint.params; see arrivals.py).
LOAD_EXTRAS: dict[str, frozenset[str]] = {
    "closed": frozenset({"ramp_up_s"}),
    "constant": frozenset(),
    "poisson": frozenset(),
    "gamma": frozenset({"burstiness"}),
    "ramp": frozenset({"end_rate_rps", "process"}),
    "spike": frozenset({"spike_rate_rps", "spike_start_s", "spike_duration_s", "process"}),
    "trace": frozenset({"path", "speed"}),
}


def _parse_workload(raw: Mapping[str, Any], base_dir: Path | None = None) -> Workload:
    raw = _table(raw, "workload")
    fields = set(Workload.__dataclass_fields__) - {"prompt_lengths", "output_lengths",
                                                   "length_table"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ScenarioError(f"unknown [workload] keys {unknown}; expected some of {sorted(fields)}")
    wl = Workload(**workload_values(raw, base_dir))
    _int(wl.prompt_tokens, "workload.prompt_tokens", 1)
    _int(wl.output_tokens, "workload.output_tokens", 1)
    _bool(wl.stream, "workload.stream")
    _bool(wl.ignore_eos, "workload.ignore_eos")
    _bool(wl.prompt_reuse, "workload.prompt_reuse")
    if wl.seed not in SEED_MODES:
        raise ScenarioError(f"workload.seed must be one of {SEED_MODES}, got {wl.seed!r}")
    _num(wl.temperature, "workload.temperature")
    if not 0.0 < _num(wl.top_p, "workload.top_p") <= 1.0:
        raise ScenarioError(f"workload.top_p must be in (0, 1], got {wl.top_p!r}")
    _int(wl.top_k, "workload.top_k", 0)
    if not 0.0 <= _num(wl.min_p, "workload.min_p") <= 1.0:
        raise ScenarioError(f"workload.min_p must be in [0, 1], got {wl.min_p!r}")
    _num(wl.prompt_tokens_stdev, "workload.prompt_tokens_stdev")
    _num(wl.output_tokens_stdev, "workload.output_tokens_stdev")
    if wl.api not in APIS:
        raise ScenarioError(f"workload.api must be one of {APIS}, got {wl.api!r}")
    return wl


MIN_REQUESTS_KINDS = ("closed", "constant", "poisson", "gamma")


def _parse_points(raw: Mapping[str, Any]) -> tuple[LoadPoint, ...]:
    """The points of `[load]`, with `min_requests` / `max_duration_s` (see `LoadPoint`)."""
    raw = dict(_table(raw, "load"))
    if raw.get("kind") == "capacity":
        return (_capacity_template(raw),)
    has_min = "min_requests" in raw or "max_duration_s" in raw
    minimum = _int(raw.pop("min_requests", 0), "load.min_requests")
    longest_raw = raw.pop("max_duration_s", None)
    points = _parse_levels(raw)
    longest = max(60.0, points[0].duration_s) if longest_raw is None else _num(
        longest_raw, "load.max_duration_s", points[0].duration_s)
    if has_min and points[0].kind not in MIN_REQUESTS_KINDS:
        raise ScenarioError(f"load.min_requests works for kinds {MIN_REQUESTS_KINDS}, not "
                            f"{points[0].kind!r}")
    return tuple(replace(p, min_requests=minimum, max_duration_s=longest) for p in points)


def _parse_levels(raw: dict[str, Any]) -> tuple[LoadPoint, ...]:
    kind = str(raw.pop("kind", "closed"))
    if kind not in ARRIVAL_KINDS:
        raise ScenarioError(f"load.kind must be one of {ARRIVAL_KINDS}, got {kind!r}")
    level_key = {"closed": "concurrency", "trace": None}.get(kind, "rate_rps")
    allowed = {"duration_s", "warmup_s", "max_requests"} | LOAD_EXTRAS[kind]
    allowed |= {level_key} if level_key else set()
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ScenarioError(f"unknown [load] keys {unknown} for kind {kind!r}; expected some "
                            f"of {sorted(allowed)}")
    duration = _num(raw.pop("duration_s", 10.0), "load.duration_s", 0.1)
    warmup = _num(raw.pop("warmup_s", 2.0), "load.warmup_s")
    max_requests = _int(raw.pop("max_requests", 0), "load.max_requests")
    if kind == "closed":
        if "ramp_up_s" in raw and _num(raw["ramp_up_s"], "load.ramp_up_s") > warmup:
            raise ScenarioError(f"load.ramp_up_s ({raw['ramp_up_s']}) must not pass load.warmup_s "
                                f"({warmup:g}): the warm-up must cover the ramp")
        levels = raw.pop("concurrency", [1])
        levels = levels if isinstance(levels, list) else [levels]
        if not levels:
            raise ScenarioError("load.concurrency must list at least one level")
        return tuple(
            LoadPoint(name=f"c{c}", kind=kind, duration_s=duration, warmup_s=warmup,
                      concurrency=_int(c, "load.concurrency", 1), max_requests=max_requests,
                      params=dict(raw))
            for c in levels
        )
    if kind == "trace":
        return (LoadPoint(name="trace", kind=kind, duration_s=duration, warmup_s=warmup,
                          max_requests=max_requests, params=dict(raw)),)
    rates = raw.pop("rate_rps", [1.0])
    rates = rates if isinstance(rates, list) else [rates]
    if not rates:
        raise ScenarioError("load.rate_rps must list at least one rate")
    return tuple(
        LoadPoint(name=f"r{_num(r, 'load.rate_rps', 1e-6):g}", kind=kind, duration_s=duration,
                  warmup_s=warmup, rate_rps=float(r), max_requests=max_requests, params=dict(raw))
        for r in rates
    )


def _capacity_template(raw: Mapping[str, Any]) -> LoadPoint:
    """The first probe of a capacity search; `harness.run.capacity` varies its level."""
    spec, keep = parse_capacity(raw)
    closed = spec.arrival == "closed"
    return LoadPoint(
        name=f"c{spec.start:g}" if closed else f"r{spec.start:g}", kind=spec.arrival,
        duration_s=spec.duration_s, warmup_s=spec.warmup_s,
        concurrency=int(spec.start) if closed else None,
        rate_rps=None if closed else spec.start,
        max_requests=_int(keep.pop("max_requests", 0), "load.max_requests"), params=keep)


def _resolve_trace(point: LoadPoint, base_dir: Path) -> LoadPoint:
    path = point.params.get("path")
    if point.kind != "trace" or not isinstance(path, str) or Path(path).is_absolute():
        return point
    return replace(point, params={**point.params, "path": str(base_dir / path)})
