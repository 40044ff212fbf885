"""The across-repeats table of a target: mean ± 95% t-interval of each headline number.

Shown only when the scenario ran `repeats` > 1 (some point has `repeat` > 0). Each cell is the
mean of the per-repeat values with the half-width of their t-interval (`harness.metrics.repeats`)
and the number of repeats that had a value; one repeat gives the value alone. The grouping over
repeats is the pandas frame's (`harness.report.frame`).
"""

from __future__ import annotations

import pandas as pd

from harness.metrics.repeats import Spread, spread
from harness.report.formatting import MISSING, esc
from harness.report.frame import frame_of, metric
from harness.report.run_data import load_label
from harness.summary.record import PointSummary

COLUMNS = (("TTFT p50 ms", "ttft_ms.p50"), ("TTFT p99 ms", "ttft_ms.p99"),
           ("E2E p50 ms", "e2e_ms.p50"), ("E2E p99 ms", "e2e_ms.p99"),
           ("req/s", "throughput.req_s"), ("out tok/s", "throughput.output_tok_s"))
RATES = ("throughput.req_s", "throughput.output_tok_s")


def fmt_spread(spread: Spread | None) -> str:
    """'123.4 ± 5.6 (n=3)'; the mean alone with one value; — with none."""
    if spread is None:
        return MISSING
    if spread.half_width is None:
        return f"{spread.mean:,.1f} (n=1)"
    return f"{spread.mean:,.1f} ± {spread.half_width:,.1f} (n={spread.n})"


def spreads_frame(points: list[PointSummary]) -> pd.DataFrame:
    """One row per point name (in load order), one column per metric: its `Spread` over the
    repeats (None where no repeat has a value, or the point ran once). A rate is 0 at a repeat
    whose requests all failed, as the main table shows it."""
    frame = frame_of(points, "").sort_values("level", na_position="last", kind="stable")
    failed = (metric(frame, "requests.total") + metric(frame, "dropped").fillna(0)) > 0
    values = frame[["point"]].assign(**{
        column: metric(frame, column).where(
            metric(frame, column).notna() | ~(failed & (column in RATES)), 0.0)
        for _, column in COLUMNS})
    return values.groupby("point", sort=False).agg(_spread)


def _spread(values: pd.Series) -> Spread | None:
    """The spread of one point's repeats; None for a point measured once."""
    return spread(values.dropna().tolist()) if len(values) > 1 else None


def repeats_table(points: list[PointSummary]) -> str:
    """The table, or '' when no point was repeated."""
    if not any(p.repeat for p in points):
        return ""
    labels: dict[str, str] = {}
    for p in points:
        labels.setdefault(p.point, load_label(p, with_kind=False))
    spreads = spreads_frame(points)
    head = "".join(f"<th>{esc(name)}</th>" for name, _ in COLUMNS)
    rows = "".join(
        f"<tr><th scope='row'>{esc(labels[str(name)])}</th>" + "".join(
            f"<td class='num'>{esc(fmt_spread(row[column]))}</td>" for _, column in COLUMNS)
        + "</tr>" for name, row in spreads.iterrows())
    return ("<h4>Across repeats: mean ± 95% t-interval</h4><div class='scroll'>"
            f"<table class='repeats'><thead><tr><th>load</th>{head}</tr></thead><tbody>"
            f"{rows}</tbody></table></div>")
