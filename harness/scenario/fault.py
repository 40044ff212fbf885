"""The scenario's `[fault]` table: a fault the harness injects during each load point.

    [fault]
    kind = "sigterm"      # SIGTERM to the target's process `at_s` into the load (a rolling
    at_s = 2.0            # restart); the target is not restarted, so one load point only

    [fault]
    kind = "disconnect"   # a share of the streams is closed by its client after `after_tokens`
    after_tokens = 4      # token chunks (the request is chosen from the seed and its index);
    share = 0.5           # after the load, the clean-up is measured (`harness.run.fault`)

A disconnect is run by the builtin driver only: k6 and locust cannot close a stream midway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario.decode import decode_variant, error, setting

FaultKind = Literal["sigterm", "disconnect"]


@dataclass(frozen=True)
class Fault:
    """What `[fault]` asks for; `at_s` is counted from the start of the point's load."""

    kind: FaultKind
    at_s: float = 0.0
    after_tokens: int = 1
    share: float = 1.0


@dataclass(frozen=True)
class Sigterm:
    """`[fault]` keys of kind "sigterm"."""

    at_s: float = setting(ge=0)


@dataclass(frozen=True)
class Disconnect:
    """`[fault]` keys of kind "disconnect"."""

    after_tokens: int = setting(1, ge=1)
    share: float = setting(1.0, gt=0, le=1)


KINDS: dict[str, type[Sigterm | Disconnect]] = {"sigterm": Sigterm, "disconnect": Disconnect}


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
    fault = Fault(kind="disconnect", after_tokens=table.after_tokens, share=table.share)
    check_fault_drivers(fault, drivers)
    return fault


def check_fault_drivers(fault: Fault | None, drivers: Sequence[str]) -> None:
    """A disconnect needs a driver that can close a stream midway: the builtin one."""
    others = [d for d in drivers if d != "builtin"]
    if fault is not None and fault.kind == "disconnect" and others:
        raise error("fault.kind", f"'disconnect' is run by the builtin driver only, not "
                                  f"{others[0]!r}: it closes streams after fault.after_tokens "
                                  f"tokens")
