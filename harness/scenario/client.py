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

from harness.scenario.decode import decode, setting


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

    connections: int = setting(0, ge=0)
    processes: int = setting(1, ge=1)
    probe_interval_s: float = setting(0.5, ge=0)
    max_dispatch_lag_ms: float = setting(10.0, ge=1e-3)
    connect_s: float = setting(10.0, ge=1e-3)
    first_token_s: float = setting(120.0, ge=1e-3)
    between_tokens_s: float = setting(60.0, ge=1e-3)
    retry_refused: int = setting(0, ge=0)
    retry_base_s: float = setting(0.05, ge=1e-3)


@dataclass(frozen=True)
class Affinity:
    """`cpu_affinity = { target = [0], driver = [1] }`: the CPU cores of the target's process
    tree and of the load driver (a lone core may be written without brackets)."""

    target: tuple[int, ...] | None = setting(None, ge=0, nonempty=True)
    driver: tuple[int, ...] | None = setting(None, ge=0, nonempty=True)

    def cores(self) -> dict[str, tuple[int, ...]]:
        """The roles set, with their cores (`Scenario.cpu_affinity`)."""
        return {role: cores for role in ("target", "driver")
                if (cores := getattr(self, role)) is not None}


def parse_client(raw: Any) -> ClientSettings:
    """The `[client]` table; `ScenarioError` naming `client.<key>`."""
    return decode(ClientSettings, raw, "client")


def override(base: ClientSettings, values: Mapping[str, Any]) -> ClientSettings:
    """`base` with the checked `values` (a target's `client` table) in place of its own."""
    return replace(base, **dict(values))
