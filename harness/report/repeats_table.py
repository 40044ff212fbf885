"""The across-repeats table of a target: mean ± 95% t-interval of each headline number.

Shown only when the scenario ran `repeats` > 1 (some point has `repeat` > 0). Each cell is the
mean of the per-repeat values with the half-width of their t-interval (`harness.repeats`) and
the number of repeats that had a value; one repeat gives the value alone.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.repeats import Spread, by_point
from harness.report.formatting import MISSING, esc
from harness.report.run_data import dist_stat, load_label, load_level, measured_rate
from harness.summary import PointSummary

COLUMNS: tuple[tuple[str, Callable[[PointSummary], float | None]], ...] = (
    ("TTFT p50 ms", lambda p: dist_stat(p, "ttft_ms", "p50")),
    ("TTFT p99 ms", lambda p: dist_stat(p, "ttft_ms", "p99")),
    ("E2E p50 ms", lambda p: dist_stat(p, "e2e_ms", "p50")),
    ("E2E p99 ms", lambda p: dist_stat(p, "e2e_ms", "p99")),
    ("req/s", lambda p: measured_rate(p, p.throughput.req_s)),
    ("out tok/s", lambda p: measured_rate(p, p.throughput.output_tok_s)),
)


def fmt_spread(spread: Spread | None) -> str:
    """'123.4 ± 5.6 (n=3)'; the mean alone with one value; — with none."""
    if spread is None:
        return MISSING
    if spread.half_width is None:
        return f"{spread.mean:,.1f} (n=1)"
    return f"{spread.mean:,.1f} ± {spread.half_width:,.1f} (n={spread.n})"


def repeats_table(points: list[PointSummary]) -> str:
    """The table, or '' when no point was repeated."""
    if not any(p.repeat for p in points):
        return ""
    firsts: dict[str, PointSummary] = {}
    for p in sorted(points, key=lambda p: (load_level(p) is None, load_level(p) or 0.0)):
        firsts.setdefault(p.point, p)
    spreads = [by_point(points, metric) for _, metric in COLUMNS]
    head = "".join(f"<th>{esc(name)}</th>" for name, _ in COLUMNS)
    rows = []
    for name, first in firsts.items():
        cells = "".join(
            f"<td class='num'>{esc(fmt_spread(s.get((first.target, name))))}</td>"
            for s in spreads)
        rows.append(f"<tr><th scope='row'>{esc(load_label(first, with_kind=False))}</th>"
                    f"{cells}</tr>")
    return ("<h4>Across repeats: mean ± 95% t-interval</h4><div class='scroll'>"
            f"<table class='repeats'><thead><tr><th>load</th>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")
