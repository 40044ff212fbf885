"""The scenario's `[fault]` table: a fault the harness injects during each load point.

    [fault]
    kind = "sigterm"      # SIGTERM to the target's process `at_s` into the load (a rolling
    at_s = 2.0            # restart); the target is not restarted, so one load point only

    [fault]
    kind = "disconnect"   # a share of the streams is closed by its client after `after_tokens`
    after_tokens = 4      # token chunks (the request is chosen from the seed and its index);
    share = 0.5           # after the load, the clean-up is measured (`harness.run.fault`)

    [fault]
    kind = "rolling"      # N replicas behind HAProxy, each replaced in turn `at_s` into the
    replicas = 3          # load (`harness.run.rolling`); the load goes on `after_s` after the
    at_s = 4.0            # last replacement, then ends (load.duration_s is its upper bound)
    after_s = 3.0
    stop = "drain"        # drain: SIGTERM, the replica drains; kill: SIGKILL
    gate = true           # take the old replica out of the balancer's rotation before stopping
    check_interval_s = 1.0  # the balancer's /health check period; `fall` failures mark DOWN
    fall = 2
    ready_timeout_s = 900   # how long a replica may take to be ready (default: the target's)
    surge = true            # the new replica first (maxSurge 1); false: the old one first

A rolling fault's keys may be set per target, over the scenario's, so every variant of a deploy
runs in one scenario on the same load: `[[targets]] ... fault = { stop = "kill", gate = false }`.

A disconnect and a rolling deploy are run by the builtin driver only: k6 and locust cannot close
a stream midway, nor end their load when the deploy is over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from harness.scenario.decode import decode_variant, error, setting

FaultKind = Literal["sigterm", "disconnect", "rolling"]
StopMode = Literal["drain", "kill"]


@dataclass(frozen=True)
class Fault:
    """What `[fault]` asks for; `at_s` is counted from the start of the point's load."""

    kind: FaultKind
    at_s: float = 0.0
    after_tokens: int = 1
    share: float = 1.0
    replicas: int = 2
    after_s: float = 3.0
    stop: StopMode = "drain"
    gate: bool = True
    check_interval_s: float = 1.0
    fall: int = 2
    ready_timeout_s: float | None = None
    surge: bool = True


@dataclass(frozen=True)
class Sigterm:
    """`[fault]` keys of kind "sigterm"."""

    at_s: float = setting(ge=0)


@dataclass(frozen=True)
class Disconnect:
    """`[fault]` keys of kind "disconnect"."""

    after_tokens: int = setting(1, ge=1)
    share: float = setting(1.0, gt=0, le=1)


@dataclass(frozen=True)
class Rolling:
    """`[fault]` keys of kind "rolling" (each may be overridden by a target's `fault` table)."""

    replicas: int = setting(2, ge=2)
    at_s: float = setting(4.0, ge=0)
    after_s: float = setting(3.0, ge=0)
    stop: StopMode = "drain"
    gate: bool = True
    check_interval_s: float = setting(1.0, ge=0.01)
    fall: int = setting(2, ge=1)
    ready_timeout_s: float | None = setting(None, gt=0)
    surge: bool = True


KINDS: dict[str, type[Sigterm | Disconnect | Rolling]] = {
    "sigterm": Sigterm, "disconnect": Disconnect, "rolling": Rolling}


def parse_fault(raw: Any, points: int, search: bool = False,
                drivers: Sequence[str] = ("builtin",)) -> Fault | None:
    """The `[fault]` table (None when absent); `points`: how many load points the scenario has,
    `search`: whether its load is a capacity search (which runs several), `drivers`: the
    scenario's load drivers."""
    if raw is None:
        return None
    _, table = decode_variant(KINDS, raw, "fault")
    if isinstance(table, Sigterm):
        if search:
            raise error("fault.kind", "'sigterm' ends the target, so it cannot run with "
                                      "load.kind = 'capacity' (a search runs several points)")
        if points != 1:
            raise error("fault.kind", f"'sigterm' ends the target, so the scenario must have "
                                      f"one load point, got {points}")
        return Fault(kind="sigterm", at_s=table.at_s)
    if isinstance(table, Rolling):
        if search or points != 1:
            raise error("fault.kind", f"'rolling' replaces the target's replicas during its "
                                      f"load, so the scenario must have one load point"
                                      f"{', not a capacity search' if search else ''}, got "
                                      f"{points}")
        fault = Fault(kind="rolling", **{f.name: getattr(table, f.name) for f in fields(table)})
    else:
        fault = Fault(kind="disconnect", after_tokens=table.after_tokens, share=table.share)
    check_fault_drivers(fault, drivers)
    return fault


def target_fault(base: Fault | None, values: Mapping[str, Any], path: str) -> Fault | None:
    """`base` with a target's `fault` table (`values`, keys checked as `Rolling` declares them)
    over it: only a rolling fault takes them."""
    if not values:
        return base
    if base is None or base.kind != "rolling":
        raise error(path, "a target's fault table needs [fault] kind = 'rolling' (its keys "
                          "set that target's deploy)")
    return replace(base, **dict(values))


def check_fault_drivers(fault: Fault | None, drivers: Sequence[str]) -> None:
    """A disconnect needs a driver that can close a stream midway, a rolling deploy one that
    ends its load when the deploy is over: the builtin one."""
    others = [d for d in drivers if d != "builtin"]
    if fault is not None and fault.kind == "disconnect" and others:
        raise error("fault.kind", f"'disconnect' is run by the builtin driver only, not "
                                  f"{others[0]!r}: it closes streams after fault.after_tokens "
                                  f"tokens")
    if fault is not None and fault.kind == "rolling" and others:
        raise error("fault.kind", f"'rolling' is run by the builtin driver only, not "
                                  f"{others[0]!r}: its load ends when the deploy is over")
