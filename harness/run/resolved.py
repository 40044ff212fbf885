"""The scenario as a run recorded it (`Manifest.scenario`): the TOML as written, and beside it
under `resolved` every setting with its default filled in.

    ScenarioAsRun.of(scenario)   the scenario's tables as written, plus ResolvedScenario:
      points: (ResolvedPoint, ...)     one per load point, as the runner ran them
      client: Client                   the load client's settings (`[client]`)
      targets: (ResolvedTarget, ...)   each target with its options and its own client

In the file the tables as written sit at the top level of `scenario`, `resolved` beside them
(`{"name": "default", "load": {...}, ..., "resolved": {...}}`); `ScenarioAsRun.from_json` and
`to_json` move between that shape and the record. The written tables stay opaque JSON except
`name`, `description` and `gates`, which are read typed. Parts a run written before they were
recorded lacks (a target's `client`) read as None: "not recorded", never a guessed default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from harness.records.typed_json import doc
from harness.records.versioned import exact
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint, Scenario

TABLES = "tables"
"""The record field that holds the written tables; in the file, its keys are `scenario`'s own."""


@dataclass(frozen=True, kw_only=True)
class Client:
    """The load client's settings as the run used them (`harness.scenario.client.ClientSettings`:
    the scenario's `[client]`, a target's own `client` over it)."""

    connections: int = doc("open connections cap (0: sized to the load)")
    processes: int = doc("builtin driver processes; locust workers (1: local runner)")
    probe_interval_s: float = doc("/health probe period during load, s (0: off)")
    max_dispatch_lag_ms: float = doc("p99 dispatch lag above which a point is driver_bound, ms")
    connect_s: float = doc("TCP connect timeout, s")
    first_token_s: float = doc("timeout from send to the first token, s")
    between_tokens_s: float = doc("timeout for any later gap between tokens, s")
    retry_refused: int = doc("times a request refused with a 503 is sent again (builtin "
                             "driver; 0: a refusal is final)")
    retry_base_s: float = doc("base of the exponential back-off between those retries, s")

    @classmethod
    def of(cls, settings: ClientSettings) -> Client:
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True, kw_only=True)
class ResolvedPoint:
    """One load point as it ran (`harness.scenario.types.LoadPoint`)."""

    name: str = doc("point name, e.g. c8")
    kind: str = doc("arrival kind: closed, constant, poisson, gamma, ramp, spike, trace")
    duration_s: float = doc("measured window, after the warm-up, s")
    warmup_s: float = doc("unmeasured load before the window, s")
    concurrency: int | None = doc("closed loop: requests in flight")
    rate_rps: float | None = doc("open loop: arrival rate, requests per second")
    max_requests: int = doc("requests that end the point early (0: no cap)")
    params: dict[str, Any] = doc("arrival-shape extras (ramp_up_s, burstiness, ramp end, ...)")
    min_requests: int | None = doc("requests after warm-up the load runs on for, past "
                                   "duration_s (0: none; null: not recorded)", None)
    max_duration_s: float | None = doc("longest measured window min_requests may stretch to, "
                                       "s (null: not recorded)", None)

    @classmethod
    def of(cls, point: LoadPoint) -> ResolvedPoint:
        values = {f.name: getattr(point, f.name) for f in dataclasses.fields(cls)}
        return cls(**values | {"params": exact(dict(point.params))})


@dataclass(frozen=True)
class ResolvedTarget:
    """A target of the scenario: its registry name, series label, options and client."""

    name: str = doc("target registry name (`patternbench list`)")
    label: str = doc("series label, the name in the results (name, or name@driver)")
    options: dict[str, Any] = doc("the target's own options, as written (credentials masked)")
    client: Client | None = doc("its client settings: [client] with its own over it (null: "
                                "not recorded)", None)


@dataclass(frozen=True, kw_only=True)
class ResolvedScenario:
    """The settings the run used, every default filled in."""

    model: str = doc("model spec every target loads")
    driver: str = doc("load driver (the first, when several)")
    device: str = doc("device as the scenario asked: auto, cpu, cuda...")
    workload: dict[str, Any] = doc("every [workload] setting with its default "
                                   "(`harness.scenario.types.Workload`'s fields, which grow "
                                   "with new releases)")
    points: tuple[ResolvedPoint, ...] = doc("the load points, in order")
    client: Client | None = doc("the scenario's [client] settings (null: not recorded)", None)
    targets: tuple[ResolvedTarget, ...] = doc("the targets, in order")


@dataclass(frozen=True, kw_only=True)
class ScenarioAsRun:
    """The scenario: its tables as written in the TOML file (at this object's top level),
    `resolved` beside them."""

    name: str | None = doc("scenario name, as written (absent: the file sets none, and the run "
                           "took the file's name)", None)
    description: str | None = doc("its description, as written", None)
    gates: dict[str, Any] | None = doc("its [gates] table, as written: metric path → bound or "
                                       "list of bounds (`harness.gate.spec`)", None)
    resolved: ResolvedScenario | None = doc("every setting with its default filled in", None)
    tables: dict[str, Any] = dataclasses.field(metadata={
        "doc": "every table and value of the scenario file as written, in its order (these "
               "keys are `scenario`'s own: the ones above are read from them)", "inline": True})

    def __post_init__(self) -> None:
        if {key: getattr(self, key) for key in VIEWS} != dict.fromkeys(VIEWS) | views(self.tables):
            raise ValueError(f"ScenarioAsRun's {', '.join(VIEWS)} differ from its written "
                             "tables: build it with ScenarioAsRun.written(tables, resolved)")

    @classmethod
    def written(cls, tables: Mapping[str, Any],
                resolved: ResolvedScenario | None) -> ScenarioAsRun:
        """The scenario whose tables as written are `tables` (the typed keys read from them)."""
        return cls(tables=dict(tables), resolved=resolved, **views(tables))

    @classmethod
    def of(cls, scenario: Scenario) -> ScenarioAsRun:
        """What `scenario` recorded: its raw tables and their resolved settings."""
        raw: dict[str, Any] = exact(dict(scenario.raw))
        resolved = ResolvedScenario(
            model=scenario.model, driver=scenario.driver, device=scenario.device,
            workload=exact(asdict(scenario.workload)), client=Client.of(scenario.client),
            points=tuple(ResolvedPoint.of(p) for p in scenario.points),
            targets=tuple(ResolvedTarget(name=t.name, label=t.label,
                                         options=exact(dict(t.options)),
                                         client=Client.of(t.effective_client(scenario.client)))
                          for t in scenario.targets))
        return cls.written(raw, resolved)

    def to_json(self) -> dict[str, Any]:
        """The file's `scenario` object: the tables as written, then `resolved`."""
        out = dict(self.tables)
        if self.resolved is not None:
            out["resolved"] = exact(self.resolved)
        return out


VIEWS = ("name", "description", "gates")
"""The written keys the record reads typed (the rest of `tables` stays opaque)."""


def views(tables: Mapping[str, Any]) -> dict[str, Any]:
    """The typed keys of the written tables (`VIEWS`), where they are present."""
    return {key: tables[key] for key in VIEWS if key in tables}


def record_shape(scenario: Any) -> Any:
    """The file's `scenario` object in the record's shape (for `typed_json.decode`): the typed
    keys and `resolved` as fields, every written key under `tables` too."""
    if not isinstance(scenario, dict):
        return scenario
    tables = {k: v for k, v in scenario.items() if k != "resolved"}
    resolved = {"resolved": scenario["resolved"]} if "resolved" in scenario else {}
    return views(tables) | resolved | {TABLES: tables}


SETTINGS_SHOWN = 4
"""Settings named in a message; the rest are counted."""


def setting_changes(a: object, b: object) -> tuple[list[str], list[str]]:
    """Two scenarios' settings (the resolved scenario as JSON, or the tables as written) compared
    leaf by leaf: (each setting that differs, as `path later-value vs earlier-value`; each
    setting only `b` records, added by a newer patternbench at its default). The description is
    left out: it changes no measurement."""
    changed: list[str] = []
    added: list[str] = []
    _walk(a, b, "", changed, added)
    return changed, added


def _walk(a: object, b: object, path: str, changed: list[str], added: list[str]) -> None:
    """Collect each leaf that differs (dotted path, later run's value first)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if path or key != "description":
                _walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key),
                      changed, added)
    elif isinstance(a, list) and isinstance(b, list) and _records(a, b):  # [[targets]]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{i}]", changed, added)
    elif a is None and b is not None:
        added.append(path)
    elif a != b:
        changed.append(f"{path} {_short(b)} vs {_short(a)}")


def _records(a: list[object], b: list[object]) -> bool:
    """Two lists of tables of one length ([[targets]]): compared entry by entry."""
    return len(a) == len(b) and all(isinstance(x, dict) for x in [*a, *b])


def named(items: list[str], sep: str) -> str:
    """The first `SETTINGS_SHOWN` of `items` joined by `sep`, the rest counted."""
    more = len(items) - SETTINGS_SHOWN
    return sep.join(items[:SETTINGS_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _short(value: object, width: int = 40) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width - 1] + "…"
