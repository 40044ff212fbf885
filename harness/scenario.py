"""Scenarios are data: a TOML file loaded into frozen dataclasses.

A scenario names the model, the targets (serving patterns, each with options), the workload
(prompt and output lengths, streaming), the load (arrival kind and its levels) and the SLOs.
Example (`scenarios/default.toml`)::

    name = "default"
    model = "tiny"
    seed = 1234

    [workload]
    prompt_tokens = 128
    output_tokens = 64
    stream = true

    [load]
    kind = "closed"
    concurrency = [1, 8, 32]
    duration_s = 8
    warmup_s = 2

    [[targets]]
    name = "flask_threads"
    options = { threads = 8 }

Nothing here reads command-line arguments: `cli.py` resolves overrides and passes plain values.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.summary import Load

ARRIVAL_KINDS = ("closed", "constant", "poisson", "gamma", "ramp", "spike", "trace")
APIS = ("completions", "chat")


class ScenarioError(ValueError):
    """A scenario file is malformed; the message says which field and what is expected."""


@dataclass(frozen=True)
class Workload:
    """What each request asks for. Token counts are in the model's tokenizer."""

    prompt_tokens: int = 128
    output_tokens: int = 64
    stream: bool = True
    api: str = "completions"
    temperature: float = 0.0
    ignore_eos: bool = True
    prompt_tokens_stdev: float = 0.0
    output_tokens_stdev: float = 0.0


@dataclass(frozen=True)
class LoadPoint:
    """One level of load: a closed-loop concurrency or an open-loop arrival rate.

    `duration_s` is the measured window, after `warmup_s` of unmeasured load. `max_requests`
    (0 = no cap) ends the point early. `params` holds arrival-shape extras (burstiness, ramp end…).
    """

    name: str
    kind: str
    duration_s: float
    warmup_s: float
    concurrency: int | None = None
    rate_rps: float | None = None
    max_requests: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Load:
        """The `load` part of this point's summary.json entry."""
        return Load(kind=self.kind, concurrency=self.concurrency, rate_rps=self.rate_rps,
                    params=dict(self.params))


@dataclass(frozen=True)
class TargetConfig:
    """A target (registry name) with its options; `label` tells apart two runs of one target.

    `workload` overrides request-mode fields of the scenario's `[workload]` for this target only
    (`TARGET_WORKLOAD_FIELDS`, e.g. `workload = { stream = false }`), so one scenario can hold a
    streaming and a non-streaming run of the same target. Prompt and output lengths stay shared.
    """

    name: str
    label: str
    options: Mapping[str, Any] = field(default_factory=dict)
    workload: Mapping[str, Any] = field(default_factory=dict)

    def effective_workload(self, base: Workload) -> Workload:
        return replace(base, **dict(self.workload))


TARGET_WORKLOAD_FIELDS = ("stream", "api")


@dataclass(frozen=True)
class ClientSettings:
    """The load client's knobs (`[client]` table); every driver reads what applies to it.

    `connections` caps open connections (0 = sized to the load: the concurrency, or the
    schedule's length up to 1024). `processes` spreads the builtin driver over that many
    processes and runs locust with that many workers (1 = locust's local runner).
    `probe_interval_s` is the `/health` probe period during load (0 = off).
    `max_dispatch_lag_ms` flags a point `driver_bound` when its p99 dispatch lag passes it.
    Timeouts (s): `connect_s` for the TCP connect, `first_token_s` from send to the first token,
    `between_tokens_s` for any later gap; the scenario's `timeout_s` bounds the whole request.
    """

    connections: int = 0
    processes: int = 1
    probe_interval_s: float = 0.5
    max_dispatch_lag_ms: float = 10.0
    connect_s: float = 10.0
    first_token_s: float = 120.0
    between_tokens_s: float = 60.0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    model: str
    seed: int
    driver: str
    workload: Workload
    points: tuple[LoadPoint, ...]
    targets: tuple[TargetConfig, ...]
    timeout_s: float = 300.0
    slo: Mapping[str, float] = field(default_factory=dict)
    gates: Mapping[str, str] = field(default_factory=dict)
    device: str = "auto"
    raw: Mapping[str, Any] = field(default_factory=dict)
    drivers: tuple[str, ...] = ()  # several: each target runs under each, labelled target@driver
    client: ClientSettings = field(default_factory=ClientSettings)
    cpu_affinity: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # target/driver

    def with_overrides(
        self,
        *,
        targets: Sequence[str] | None = None,
        driver: str | None = None,
        model: str | None = None,
        device: str | None = None,
    ) -> Scenario:
        """A copy restricted to `targets` (labels or names), with driver/model/device replaced."""
        out = self
        if targets:
            wanted = set(targets)
            kept = tuple(t for t in self.targets if t.label in wanted or t.name in wanted)
            known = {t.label for t in self.targets} | {t.name for t in self.targets}
            missing = sorted(wanted - known)
            if missing:
                # Targets not in the scenario run with default options.
                kept += tuple(TargetConfig(name=m, label=m) for m in missing)
            out = replace(out, targets=kept)
        if driver:
            out = replace(out, driver=driver, drivers=(driver,))
        if model:
            out = replace(out, model=model)
        if device:
            out = replace(out, device=device)
        return out


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
             "timeout_s", "slo", "gates", "device", "client", "cpu_affinity"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"unknown top-level keys {unknown}; expected some of {sorted(known)}")
    workload = _parse_workload(data.get("workload", {}))
    points = _parse_points(data.get("load", {}))
    if base_dir is not None:
        points = tuple(_resolve_trace(p, base_dir) for p in points)
    drivers = _parse_drivers(data.get("driver", "builtin"))
    targets = _parse_targets(data.get("targets", []))
    slo = {str(k): _num(v, f"slo.{k}") for k, v in _table(data.get("slo", {}), "slo").items()}
    gates = {str(k): str(v) for k, v in _table(data.get("gates", {}), "gates").items()}
    return Scenario(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")),
        model=str(data.get("model", "tiny")),
        seed=_int(data.get("seed", 0), "seed"),
        driver=drivers[0],
        drivers=drivers,
        client=_parse_client(data.get("client", {})),
        cpu_affinity=_parse_affinity(data.get("cpu_affinity", {})),
        workload=workload,
        points=points,
        targets=targets,
        timeout_s=_num(data.get("timeout_s", 300.0), "timeout_s", 0.001),
        slo=slo,
        gates=gates,
        device=str(data.get("device", "auto")),
        raw=dict(data),
    )


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{name} must be >= {minimum}, got {value}")
    return value


def _table(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{name} must be a table (key = value pairs), got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{name} must be true or false, got {value!r}")
    return value


# The [load] extras each arrival kind reads (they land in LoadPoint.params; see arrivals.py).
LOAD_EXTRAS: dict[str, frozenset[str]] = {
    "closed": frozenset(),
    "constant": frozenset(),
    "poisson": frozenset(),
    "gamma": frozenset({"burstiness"}),
    "ramp": frozenset({"end_rate_rps", "process"}),
    "spike": frozenset({"spike_rate_rps", "spike_start_s", "spike_duration_s", "process"}),
    "trace": frozenset({"path", "speed"}),
}


def _num(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{name} must be >= {minimum}, got {value}")
    return float(value)


def _parse_workload(raw: Mapping[str, Any]) -> Workload:
    raw = _table(raw, "workload")
    fields = set(Workload.__dataclass_fields__)
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ScenarioError(f"unknown [workload] keys {unknown}; expected some of {sorted(fields)}")
    wl = Workload(**dict(raw))
    _int(wl.prompt_tokens, "workload.prompt_tokens", 1)
    _int(wl.output_tokens, "workload.output_tokens", 1)
    _bool(wl.stream, "workload.stream")
    _bool(wl.ignore_eos, "workload.ignore_eos")
    _num(wl.temperature, "workload.temperature")
    _num(wl.prompt_tokens_stdev, "workload.prompt_tokens_stdev")
    _num(wl.output_tokens_stdev, "workload.output_tokens_stdev")
    if wl.api not in APIS:
        raise ScenarioError(f"workload.api must be one of {APIS}, got {wl.api!r}")
    return wl


def _parse_points(raw: Mapping[str, Any]) -> tuple[LoadPoint, ...]:
    raw = dict(_table(raw, "load"))
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


def _parse_targets(raw: Sequence[Any]) -> tuple[TargetConfig, ...]:
    if not raw:
        raise ScenarioError("a scenario needs at least one [[targets]] entry")
    out: list[TargetConfig] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping) or "name" not in item:
            raise ScenarioError(f"targets[{i}] needs a name")
        extra = sorted(set(item) - {"name", "label", "options", "workload"})
        if extra:
            raise ScenarioError(f"unknown keys {extra} in targets[{i}]; expected name, label, "
                                "options, workload")
        name = str(item["name"])
        label = str(item.get("label", name))
        workload = dict(_table(item.get("workload", {}), f"targets[{i}].workload"))
        unknown = sorted(set(workload) - set(TARGET_WORKLOAD_FIELDS))
        if unknown:
            raise ScenarioError(f"targets[{i}].workload may set only {TARGET_WORKLOAD_FIELDS}, "
                                f"got {unknown}")
        if not isinstance(workload.get("stream", True), bool):
            raise ScenarioError(f"targets[{i}].workload.stream must be true or false")
        if workload.get("api", APIS[0]) not in APIS:
            raise ScenarioError(f"targets[{i}].workload.api must be one of {APIS}")
        options = _table(item.get("options", {}), f"targets[{i}].options")
        out.append(TargetConfig(name=name, label=label, options=dict(options),
                                workload=workload))
    labels = [t.label for t in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ScenarioError(f"target labels must be unique; repeated: {dupes} (set label = ...)")
    return tuple(out)


def _parse_drivers(raw: Any) -> tuple[str, ...]:
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ScenarioError(f"driver must be a driver name or a list of them, got {raw!r}")
    if len(set(names)) != len(names):
        raise ScenarioError(f"driver lists a driver twice: {raw!r}")
    return tuple(names)


def _parse_client(raw: Any) -> ClientSettings:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"[client] must be a table, got {raw!r}")
    fields = set(ClientSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ScenarioError(f"unknown [client] keys {unknown}; expected some of {sorted(fields)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("connections", "processes"):
            values[key] = _int(value, f"client.{key}", 1 if key == "processes" else 0)
        else:
            values[key] = _num(value, f"client.{key}", 0.0 if key == "probe_interval_s" else 1e-3)
    return ClientSettings(**values)


def _parse_affinity(raw: Any) -> dict[str, tuple[int, ...]]:
    """`{ target = [0], driver = [1] }`: CPU cores for the target process tree and the driver."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"cpu_affinity must be a table like {{ target = [0], driver = [1] }}, "
                            f"got {raw!r}")
    unknown = sorted(set(raw) - {"target", "driver"})
    if unknown:
        raise ScenarioError(f"unknown cpu_affinity keys {unknown}; expected target and/or driver")
    out: dict[str, tuple[int, ...]] = {}
    for role, cores in raw.items():
        cores = cores if isinstance(cores, list) else [cores]
        if not cores:
            raise ScenarioError(f"cpu_affinity.{role} must list at least one core")
        out[role] = tuple(_int(c, f"cpu_affinity.{role}") for c in cores)
    return out


def _resolve_trace(point: LoadPoint, base_dir: Path) -> LoadPoint:
    path = point.params.get("path")
    if point.kind != "trace" or not isinstance(path, str) or Path(path).is_absolute():
        return point
    return replace(point, params={**point.params, "path": str(base_dir / path)})
