"""Typed summary records for tests that feed a report, a calibration or a gate.

A point starts as what `summarize` gives for no samples (every metric None, nothing counted)
and takes the fields a test sets, so a fixture has exactly the shape the runner writes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.atomic import write_json
from harness.metrics import summarize
from harness.summary import SCHEMA_VERSION, Load, PointSummary, RunSummary, TargetRun


def typed_point(target: str, point: str, load: Load, **fields: Any) -> PointSummary:
    """A summary point of `target` at `load`, with `fields` (any `PointSummary` field) set."""
    base = PointSummary.of(summarize([]), target=target, target_name=target, driver="builtin",
                           point=point, load=load, stream=True, flags=(),
                           max_dispatch_lag_ms=50.0)
    return replace(base, **fields)


def write_summary(run_dir: Path, points: list[PointSummary],
                  targets: dict[str, TargetRun] | None = None) -> Path:
    """`run_dir/summary.json` holding `points` (targets: each point's, all started)."""
    targets = targets or {p.target: TargetRun(name=p.target_name, options={}, status="ok")
                          for p in points}
    summary = RunSummary(schema_version=SCHEMA_VERSION, run=run_dir.name, scenario="test",
                         interrupted=False, targets=targets, points=tuple(points))
    return write_json(run_dir / "summary.json", summary.to_json())
