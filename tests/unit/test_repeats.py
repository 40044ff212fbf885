"""Repeats: the runner interleaves them across targets; the report's mean ± t-interval."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.metrics.repeats import by_point, spread, t975
from harness.metrics.requests import summarize
from harness.run import runner
from harness.run.launcher import TargetProcess
from harness.run.point import PointResult, RunContext
from harness.scenario.load import parse_scenario
from harness.scenario.types import LoadPoint, Scenario, TargetConfig
from harness.summary.record import PointSummary
from tests.manifests import MODEL


def test_spread_is_the_mean_and_student_t_interval() -> None:
    # mean 110, s = 10, n = 3: half-width 4.303 · 10 / √3 = 24.844
    result = spread([100.0, 110.0, 120.0])
    assert result is not None and result.n == 3 and result.mean == 110.0
    assert result.lo == pytest.approx(85.156, abs=1e-3)
    assert result.hi == pytest.approx(134.844, abs=1e-3)
    one = spread([5.0, None])
    assert one is not None and (one.n, one.mean, one.lo, one.half_width) == (1, 5.0, None, None)
    assert spread([None]) is None
    assert (t975(1), t975(30), t975(200)) == (12.706, 2.042, 1.96)


def entry(target: str, point: str, repeat: int) -> PointSummary:
    """A point's entry as `harness.run.point.point_entry` assembles it (no samples)."""
    return PointSummary.of(
        summarize([]), target=target, target_name=target, driver="builtin", point=point,
        load=LoadPoint(point, "closed", 1, 0, 1).load(), stream=True, flags=(),
        max_dispatch_lag_ms=10.0, repeat=repeat)


def test_by_point_groups_repeats_of_one_target_and_point() -> None:
    points = [entry("a", "c1", r) for r in range(2)] + [entry("b", "c1", 0)]
    values = {("a", 0): 1.0, ("a", 1): 3.0, ("b", 0): 9.0}
    result = by_point(points, lambda p: values[(p.target, p.repeat)])
    assert list(result) == [("a", "c1")]  # b ran once: no spread
    assert result["a", "c1"].mean == 2.0


def test_the_runner_interleaves_repeats_across_targets(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    order: list[tuple[str, int]] = []

    def fake_run_point(ctx: RunContext, tc: TargetConfig, target: TargetProcess,
                       point: LoadPoint, driver: str, repeat: int = 0) -> PointResult:
        order.append((tc.label, repeat))
        return PointResult(entry(tc.label, point.name, repeat), [])

    def opener(tc: TargetConfig, scenario: Scenario, run_dir: Path, opts: Any) -> TargetProcess:
        return TargetProcess(label=tc.label, url="http://127.0.0.1:1", process=None,
                             log_path=run_dir / "log")

    monkeypatch.setattr(runner, "run_point", fake_run_point)
    monkeypatch.setattr(runner, "prepare_model", lambda spec: (replace(MODEL, spec=spec),
                                                               _Tokenizer()))
    scenario = parse_scenario({"targets": ["a", "b", "c"], "repeats": 2,
                               "load": {"concurrency": [1]}})
    run_dir = runner.run_scenario(scenario, runner.RunOptions(results_root=tmp_path,
                                                              out=io.StringIO()), opener)
    assert order == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]
    assert (run_dir / "summary.json").is_file()


class _Tokenizer:
    """Enough of a tokenizer for `PromptFactory` to be built (the fake run sends nothing)."""

    def get_vocab(self) -> dict[str, int]:
        words = [f"Ġ{a}{b}{c}" for a in "abcdefg" for b in "abcdefg" for c in "abcdefg"]
        return {w: i for i, w in enumerate(words)}
