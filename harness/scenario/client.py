"""The scenario's `[client]` table (the load client's knobs) and `cpu_affinity` (CPU pinning).

    [client]
    connections = 64
    probe_interval_s = 0.25

    cpu_affinity = { target = [0], driver = [1] }

A target may set its own client knobs over the scenario's, e.g. clients that retry 503s beside
clients that do not (`harness.scenario.targets`):

    [[targets]]
    name = "fastapi_threadpool"
    label = "limited_retry"
    client = { retry_refused = 4 }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from harness.scenario.values import ScenarioError
from harness.scenario.values import integer as _int
from harness.scenario.values import number as _num


@dataclass(frozen=True)
class ClientSettings:
    """The load client's knobs (`[client]` table); every driver reads what applies to it.

    `connections` caps open connections (0 = sized to the load: the concurrency, or the
    schedule's length up to 1024). `processes` spreads the builtin driver over that many
    processes and runs locust with that many workers (1 = locust's local runner).
    `probe_interval_s` is the `/health` probe period during load (0 = off).
    `max_dispatch_lag_ms` flags a point `driver_bound` when its p99 dispatch lag, or the p99
    of the builtin driver's own event-loop lag, passes it (see `harness.run.point`).
    Timeouts (s): `connect_s` for the TCP connect, `first_token_s` from send to the first token,
    `between_tokens_s` for any later gap; the scenario's `timeout_s` bounds the whole request.
    `retry_refused` (builtin driver): how many times a request refused with a 503 is sent again,
    after an exponential back-off with full jitter (`harness.drivers.backoff.retry_delay`, from
    `retry_base_s`); 0 = a refusal is final.
    """

    connections: int = 0
    processes: int = 1
    probe_interval_s: float = 0.5
    max_dispatch_lag_ms: float = 10.0
    connect_s: float = 10.0
    first_token_s: float = 120.0
    between_tokens_s: float = 60.0
    retry_refused: int = 0
    retry_base_s: float = 0.05


def parse_client(raw: Any) -> ClientSettings:
    return ClientSettings(**client_values(raw, "[client]", "client"))


def client_values(raw: Any, table: str, prefix: str) -> dict[str, Any]:
    """The checked `ClientSettings` fields `raw` sets, by name; `ScenarioError` (one line, naming
    `table` or `prefix.key`) for a key that is not one or a value out of range. A target's
    `client = { ... }` is read with this too, and merged over the scenario's (`override`)."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{table} must be a table, got {raw!r}")
    fields = set(ClientSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise ScenarioError(f"unknown {table} keys {unknown}; expected some of {sorted(fields)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("connections", "processes", "retry_refused"):
            values[key] = _int(value, f"{prefix}.{key}", 1 if key == "processes" else 0)
        else:
            least = 0.0 if key == "probe_interval_s" else 1e-3
            values[key] = _num(value, f"{prefix}.{key}", least)
    return values


def override(base: ClientSettings, values: Mapping[str, Any]) -> ClientSettings:
    """`base` with the checked `values` (from `client_values`) in place of its own."""
    return replace(base, **dict(values))


def parse_affinity(raw: Any) -> dict[str, tuple[int, ...]]:
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
