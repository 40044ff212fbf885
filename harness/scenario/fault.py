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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario.values import ScenarioError
from harness.scenario.values import integer as _int
from harness.scenario.values import number as _num

FaultKind = Literal["sigterm", "disconnect"]
KEYS: dict[str, frozenset[str]] = {"sigterm": frozenset({"kind", "at_s"}),
                                   "disconnect": frozenset({"kind", "after_tokens", "share"})}


@dataclass(frozen=True)
class Fault:
    """What `[fault]` asks for; `at_s` is counted from the start of the point's load."""

    kind: FaultKind
    at_s: float = 0.0
    after_tokens: int = 1
    share: float = 1.0


def parse_fault(raw: Any, points: int, search: bool = False,
                drivers: Sequence[str] = ("builtin",)) -> Fault | None:
    """The `[fault]` table (None when absent); `points`: how many load points the scenario has,
    `search`: whether its load is a capacity search (which runs several), `drivers`: the
    scenario's load drivers."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"[fault] must be a table, got {raw!r}")
    kind = raw.get("kind")
    if kind not in KEYS:
        raise ScenarioError(f"fault.kind must be one of {sorted(KEYS)}, got {kind!r}")
    unknown = sorted(set(raw) - KEYS[kind])
    if unknown:
        raise ScenarioError(f"unknown [fault] keys {unknown} for kind {kind!r}; "
                            f"expected some of {sorted(KEYS[kind])}")
    if kind == "sigterm":
        if "at_s" not in raw:
            raise ScenarioError("fault.at_s is required for kind 'sigterm'")
        if search:
            raise ScenarioError("fault 'sigterm' ends the target, so it cannot run with "
                                "load.kind = 'capacity' (a search runs several points)")
        if points != 1:
            raise ScenarioError(f"fault 'sigterm' ends the target, so the scenario must have one "
                                f"load point, got {points}")
        return Fault(kind="sigterm", at_s=_num(raw["at_s"], "fault.at_s", 0.0))
    share = _num(raw.get("share", 1.0), "fault.share", 0.0)
    if not 0.0 < share <= 1.0:
        raise ScenarioError(f"fault.share must be in (0, 1], got {share!r}")
    fault = Fault(kind="disconnect", share=share,
                  after_tokens=_int(raw.get("after_tokens", 1), "fault.after_tokens", 1))
    check_fault_drivers(fault, drivers)
    return fault


def check_fault_drivers(fault: Fault | None, drivers: Sequence[str]) -> None:
    """A disconnect needs a driver that can close a stream midway: the builtin one."""
    others = [d for d in drivers if d != "builtin"]
    if fault is not None and fault.kind == "disconnect" and others:
        raise ScenarioError(f"fault 'disconnect' is run by the builtin driver only, not "
                            f"{others[0]!r}: it closes streams after fault.after_tokens tokens")
