"""Load-axis ticks of the headline charts: a capacity search's bisected levels stay readable."""

from __future__ import annotations

import pytest

from harness.report.charts import _figure, _scale_x

# draws on real matplotlib axes (its import alone is ~1 s): make test, not test-fast
pytestmark = pytest.mark.slow


def labels(xs: list[float]) -> list[str]:
    _fig, ax = _figure()
    _scale_x(ax, xs)
    return [t.get_text() for t in ax.get_xticklabels()]


def test_bisected_levels_do_not_print_over_each_other() -> None:
    # the levels `patternbench capacity` measured against vLLM, in the order it ran them
    measured = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 24.0, 20.0, 18.0, 17.0]
    assert labels(measured) == ["1", "2", "4", "8", "16", "20", "32"]


def test_a_sweep_keeps_every_level_and_a_linear_axis_spaces_by_value() -> None:
    assert labels([1.0, 4.0, 8.0]) == ["1", "4", "8"]
    assert labels([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]) == ["1", "2", "4", "8", "16", "32",
                                                               "64"]
    assert labels([10.0, 10.1, 11.0, 12.0, 13.0, 14.0]) == ["10", "11", "12", "13", "14"]
