"""The runner's hook for `kind = "capacity"`: one capacity search per target × driver.

    cap = run_capacity(ctx, tc, target, "builtin", record=state_add_point)

Each level the search asks for (`harness.capacity.search`) runs as an ordinary load point
(`harness.point.run_point`) and is handed to `record` (which stores it in summary.json, like a
sweep's point) before the search decides the next level.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.capacity import capacity_point, search
from harness.launcher import TargetProcess
from harness.point import RunContext, run_point
from harness.scenario import TargetConfig
from harness.summary import Capacity, PointSummary


def run_capacity(ctx: RunContext, tc: TargetConfig, target: TargetProcess, driver_name: str,
                 record: Callable[[PointSummary], None], repeat: int = 0) -> Capacity:
    """Search `target`'s capacity under the scenario's SLO; stopped `interrupted` on ^C (the
    interrupted point is recorded too)."""
    scenario = ctx.scenario
    spec = scenario.capacity
    if spec is None:
        raise ValueError(f"scenario {scenario.name!r} has no capacity search")
    template = scenario.points[0]

    def measure(level: float) -> PointSummary | None:
        result = run_point(ctx, tc, target, capacity_point(template, spec, level), driver_name,
                           repeat)
        record(result.entry)
        return None if result.interrupted else result.entry

    return search(spec, scenario.slo, scenario.slo_share, measure)
