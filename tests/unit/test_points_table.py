"""A target's results table reads its numbers from the pandas frame (harness.report.frame).

The points are what the runner writes: `summarize` over the hand-built driver samples of
`tests/unit/test_metrics.run()` (whose figures are worked out there by hand), one point of
only its failed requests, and one point that measured nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd
import pytest

from harness.metrics.requests import summarize
from harness.report.formatting import MISSING
from harness.report.frame import frame_of, metric
from harness.report.points_table import COLUMNS, points_table
from harness.summary.record import Load, PointSummary
from harness.verdict.anchors import point_anchor
from tests.unit.test_metrics import LOAD_END, WARMUP_END, run

TARGETS = ["flask_threads"]
SLO = {"ttft_ms": 150.0}
COLUMN = {name: i for i, (name, _) in enumerate(COLUMNS)}


def entry(point: str, concurrency: int, request_ids: str | None, repeat: int = 0) -> PointSummary:
    """The point `harness.run.point` would write for the samples of `run()` named in
    `request_ids` (all of them: None; none: "", a point that measured nothing)."""
    samples = [s for s in run() if request_ids is None or s.request_id in request_ids]
    metrics = (summarize(samples, warmup_end=WARMUP_END, load_end=LOAD_END, slo=SLO) if samples
               else summarize([], slo=SLO))
    return PointSummary.of(metrics, target="flask_threads", target_name="flask_threads",
                           driver="builtin", point=point,
                           load=Load(kind="closed", concurrency=concurrency), stream=True,
                           flags=(), max_dispatch_lag_ms=50.0, repeat=repeat)


def table_rows(html: str) -> list[tuple[str, list[str]]]:
    """(the row's attributes, its cells' inner HTML) of each body row."""
    body = html.split("<tbody>", 1)[1]
    return [(attrs, re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", cells))
            for attrs, cells in re.findall(r"<tr([^>]*)>(.*?)</tr>", body)]


def number(cell: str) -> float:
    return float(re.sub(r"<.*", "", cell).split(" ")[0].replace(",", ""))


@dataclass(frozen=True)
class Table:
    html: str
    rows: list[tuple[str, list[str]]]  # (attributes, cells) of each body row
    frame: pd.DataFrame  # the points' frame, indexed by (point, repeat)

    def value(self, point: str, column: str, repeat: int = 0) -> float:
        """The frame's `column` of a point (NaN where it has none)."""
        return float(metric(self.frame, column)[(point, repeat)])

    def cells(self, label: str) -> list[str]:
        return next(cells for _, cells in self.rows if cells[COLUMN["label"]] == label)


@pytest.fixture(scope="module")
def table() -> Table:
    # given out of load order, with a second repeat of c=1
    points = [entry("c8", 8, "cdf"), entry("c1", 1, None, repeat=1), entry("c1", 1, None),
              entry("c4", 4, "")]
    html = points_table(points, TARGETS)
    return Table(html, table_rows(html), frame_of(points, "").set_index(["point", "repeat"]))


def test_the_table_shows_the_frames_numbers_in_load_order(table: Table) -> None:
    assert [cells[COLUMN["label"]] for _, cells in table.rows] == [
        "c=1", "c=1 · repeat 1", "c=4", "c=8"]
    c1 = table.cells("c=1")
    for name in ("ttft_ms.p50", "ttft_ms.p99", "tpot_ms.p50", "e2e_ms.p50", "e2e_ms.p99",
                 "e2e_sched_ms.p99", "dispatch_lag_ms.p99"):
        assert number(c1[COLUMN[name]]) == pytest.approx(table.value("c1", name), abs=0.05)
    assert number(c1[COLUMN["ttft_ms.p50"]]) == 100.0  # ttft of a, b, e: 100, 200, 100 ms
    assert number(c1[COLUMN["e2e_ms.p50"]]) == 400.0  # e2e 400, 200, 1000 ms
    for name in ("throughput.req_s", "goodput.req_s", "achieved_concurrency"):
        assert number(c1[COLUMN[name]]) == pytest.approx(table.value("c1", name), abs=0.005)
    assert number(c1[COLUMN["requests.ok"]]) == table.value("c1", "requests.ok") == 3
    errors = c1[COLUMN["errors"]]
    assert "refused 1" in errors and "http_error 1 (500×1)" in errors and "timeout 1" in errors


def test_a_missing_value_renders_as_a_dash_not_zero(table: Table) -> None:
    failed, empty = table.cells("c=8"), table.cells("c=4")
    assert math.isnan(table.value("c8", "ttft_ms.p50"))
    assert failed[COLUMN["ttft_ms.p50"]] == failed[COLUMN["e2e_ms.p99"]] == MISSING
    assert failed[COLUMN["dropped"]] == MISSING  # the builtin driver reports no drops
    # nothing completed in a known window is a measured 0; a point that measured nothing has —
    assert number(failed[COLUMN["throughput.req_s"]]) == 0.0
    assert table.value("c8", "throughput.req_s") == 0.0
    assert math.isnan(table.value("c4", "throughput.req_s"))
    for name in ("throughput.req_s", "throughput.output_tok_s", "achieved_concurrency",
                 "dispatch_lag_ms.p99", "goodput.req_s"):
        assert empty[COLUMN[name]] == MISSING, name
    assert "0" not in "".join(empty[COLUMN["ttft_ms.p50"]:COLUMN["e2e_sched_ms.p99"] + 1])


def test_marks_tooltips_and_anchors_stay(table: Table) -> None:
    anchors = [re.findall(r"id='([^']*)'", attrs) for attrs, _ in table.rows]
    assert anchors == [[point_anchor(TARGETS, "flask_threads", "c1")], [],
                       [point_anchor(TARGETS, "flask_threads", "c4")],
                       [point_anchor(TARGETS, "flask_threads", "c8")]]  # first repeat only
    # three TTFT values are below every percentile's floor: greyed, with the count in the title
    assert re.search(r"<td class='num too-few' title='only 3 values: too few for a "
                     r"trustworthy p99[^']*'>", table.html)
    assert "title='SLO {&quot;ttft_ms&quot;: 150.0}'" in table.html


def test_the_answers_lengths_are_shown_per_point(table: Table) -> None:
    c1 = table.cells("c=1")[COLUMN["output_tokens"]]
    want = [table.value("c1", f"output_tokens.{stat}") for stat in ("p50", "p90", "max")]
    assert [float(v.replace(",", "")) for v in c1.split(" / ")] == [round(v) for v in want]
    assert want[0] < want[2]  # these answers differ in length
    assert table.cells("c=4")[COLUMN["output_tokens"]] == MISSING  # nothing measured
