"""The scenario's `[fault]` table: a fault the harness injects during each load point.

    [fault]
    kind = "sigterm"      # SIGTERM to the target's process `at_s` into the load (a rolling
    at_s = 2.0            # restart); the target is not restarted, so one load point only

`kind = "disconnect"` (`after_tokens`, `share`: clients that abandon their streams) is
validated but refused with a one-line error: the builtin driver cannot abandon streams yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario_values import ScenarioError
from harness.scenario_values import integer as _int
from harness.scenario_values import number as _num

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


def parse_fault(raw: Any, points: int, search: bool = False) -> Fault | None:
    """The `[fault]` table (None when absent); `points`: how many load points the scenario has,
    `search`: whether its load is a capacity search (which runs several)."""
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
    _int(raw.get("after_tokens", 1), "fault.after_tokens", 1)
    raise ScenarioError("fault.kind 'disconnect' is not run yet: the builtin driver cannot "
                        "abandon streams; only 'sigterm' is")
