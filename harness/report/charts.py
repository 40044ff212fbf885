"""Headline charts as PNG data URIs: throughput, TTFT p99, E2E p50/p99 vs load, errors per target.

Each chart has a kind, and its figure the id `chart_anchor(kind, detail)`: "throughput", "ttft",
"e2e" (detail: the load family, only when a run has both closed and open points) and "errors".

matplotlib is imported inside the drawing function and drives an explicit Agg canvas, so
importing this module has no side effects and never touches pyplot's global backend.
A target keeps one color and marker in every chart (and in the page's tables).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.report.run_data import (
    ERROR_STATUSES,
    RunData,
    dist_stat,
    error_counts,
    load_kind,
    load_level,
    measured_rate,
)
from harness.summary.record import PointSummary

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
STATUS_COLORS = {"http_error": "#b2182b", "refused": "#ef8a62", "timeout": "#7b3294",
                 "truncated": "#c2a5cf", "conn_error": "#4d4d4d", "dropped": "#e6ab02"}
X_LABELS = {"closed": "concurrency (requests in flight)", "open": "offered rate (req/s)"}
WIDE_SPREAD = 20.0  # max/min above which an axis goes logarithmic


@dataclass(frozen=True)
class Chart:
    """One rendered chart; `data_uri` is None when there was nothing to plot."""

    title: str
    data_uri: str | None
    note: str = ""  # what the reader should know: how to read it, or why it is empty
    kind: str = ""  # the figure's id is `chart_anchor(kind, detail)` when kind is set
    detail: str = ""
    alt: str = ""  # text alternative with the key numbers (default: the title)
    table: str = ""  # the plotted data as an HTML table (escaped), shown in a <details>


@dataclass(frozen=True)
class Line:
    target: str
    xy: tuple[tuple[float, float], ...]
    style: str = "-"


def target_styles(targets: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Target → (color, marker), stable in the order targets are listed."""
    return {t: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)])
            for i, t in enumerate(targets)}


def headline_charts(run: RunData) -> list[Chart]:
    """The charts at the top of a report, one set per load family present (closed / open)."""
    styles = target_styles(list(run.targets))
    families = sorted({load_kind(p) for p in run.points if load_level(p) is not None})
    charts: list[Chart] = []
    for family in families:
        points = [p for p in run.points if load_kind(p) == family and load_level(p) is not None]
        suffix = "" if len(families) == 1 else f" ({family} loop)"
        detail = "" if len(families) == 1 else family
        xlabel = X_LABELS.get(family, "load level")
        charts.append(_line_chart(
            "Output tokens/s vs load" + suffix, _lines(points, "throughput", "output_tok_s"),
            styles, xlabel, "output tokens/s", log_y=False,
            note="Output tokens of successful requests per second of the measured window. "
                 "Higher is better; a point where every request failed shows 0.",
            kind="throughput", detail=detail))
        ttft_q, why = supported_tail(points, "ttft_ms")
        charts.append(_line_chart(
            f"TTFT {ttft_q} vs load" + suffix, _lines(points, "ttft_ms", ttft_q),
            styles, xlabel, f"TTFT {ttft_q} (ms)", log_y=True,
            note=f"{QUANTILE_WORDS[ttft_q]} time to first token, from sent. Lower is better; "
                 f"points without first-token data are left out.{why}",
            kind="ttft", detail=detail))
        e2e_q, why = supported_tail(points, "e2e_ms")
        if e2e_q == "p50":
            title, lines, how = "E2E latency p50 vs load", _lines(points, "e2e_ms", "p50"), \
                "the median"
        else:
            title = f"E2E latency p50 (dashed) / {e2e_q} (solid) vs load"
            lines = _lines(points, "e2e_ms", e2e_q) + _lines(points, "e2e_ms", "p50", "--")
            how = f"solid {e2e_q}, dashed median"
        charts.append(_line_chart(
            title + suffix, lines, styles, xlabel, "E2E latency (ms)", log_y=True,
            note=f"Request latency from sent to last byte; {how}. Lower is better.{why}",
            kind="e2e", detail=detail))
    if not families and run.points:
        charts.append(Chart("Charts vs load", None, "No point has a concurrency or a rate."))
    charts.append(_error_chart(run, styles))
    return charts


QUANTILE_WORDS = {"p99": "99th-percentile", "p90": "90th-percentile", "p50": "Median"}


def supported_tail(points: Sequence[PointSummary], metric: str) -> tuple[str, str]:
    """The highest of p99, p90, p50 that every plotted point has enough requests for (a
    percentile in a distribution's `too_few` is not drawn as if it were known), and a sentence
    saying why when it is not p99."""
    dists = [d for p in points if (d := getattr(p, metric)) is not None]
    for q in ("p99", "p90"):
        if not any(q in d.too_few for d in dists):
            break
    else:
        q = "p50"
    if q == "p99" or not dists:
        return "p99", ""
    counts = sorted(d.count for d in dists)
    return q, (f" Showing {q}: the points hold {counts[0]:,}–{counts[-1]:,} requests, too few "
               "for a p99 (or p90) to be more than their largest values.")


def _lines(points: Sequence[PointSummary], metric: str, stat: str,
           style: str = "-") -> list[Line]:
    by_target: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        x = load_level(point)
        if metric == "throughput":
            y = measured_rate(point, getattr(point.throughput, stat))  # all failed: 0
        else:
            y = dist_stat(point, metric, stat)
        if x is not None and y is not None:
            by_target.setdefault(point.target, []).append((x, float(y)))
    return [Line(t, tuple(sorted(xy)), style) for t, xy in by_target.items()]


def _line_chart(title: str, lines: list[Line], styles: dict[str, tuple[str, str]],
                xlabel: str, ylabel: str, *, log_y: bool, note: str, kind: str = "",
                detail: str = "") -> Chart:
    if not lines:
        return Chart(title, None, "No data for this chart (every value is empty).", kind,
                     detail)
    fig, ax = _figure()
    for line in lines:
        color, marker = styles.get(line.target, ("#333333", "o"))
        xs = [x for x, _ in line.xy]
        ys = [y for _, y in line.xy]
        label = _text(line.target) if line.style == "-" or len(lines) == 1 else None
        ax.plot(xs, ys, line.style, color=color, marker=marker, label=label,
                linewidth=1.8, markersize=5)
    all_x = sorted({x for line in lines for x, _ in line.xy})
    all_y = [y for line in lines for _, y in line.xy]
    _scale_x(ax, all_x)
    from matplotlib.ticker import FuncFormatter

    if log_y and _wide(all_y):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ylabel += " — log scale"
    else:
        ax.set_ylim(bottom=0, top=max(all_y) * 1.1 if max(all_y) > 0 else 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4),
                   frameon=False, fontsize=8)
    alt, table = _line_text(title, lines)
    return Chart(title, _png(fig), note, kind, detail, alt=alt, table=table)


def _line_text(title: str, lines: list[Line]) -> tuple[str, str]:
    """The alt text (each line's range) and the data table (x by line) of a line chart."""
    import pandas as pd

    rows = [{"line": line.target + ("" if line.style == "-" else f" ({line.style})"), "x": x,
             "y": y} for line in lines for x, y in line.xy]
    frame = pd.DataFrame(rows)
    table = frame.pivot_table(index="x", columns="line", values="y", sort=False).to_html(
        border=0, classes="data", float_format=lambda v: f"{v:,.1f}", na_rep="—")
    alt = f"{title}: " + "; ".join(
        f"{name} {group['y'].iloc[0]:,.1f} at {group['x'].iloc[0]:g} to "
        f"{group['y'].iloc[-1]:,.1f} at {group['x'].iloc[-1]:g}"
        for name, group in frame.groupby("line", sort=False)) + "."
    return alt, table


def _error_chart(run: RunData, styles: dict[str, tuple[str, str]]) -> Chart:
    title = "Errors and refusals per target (all load points)"
    targets = list(run.targets)
    if not targets:
        return Chart(title, None, "No targets in this run.", "errors")
    totals, requests = _error_totals(run, targets)
    if not any(totals.values()):
        return Chart(title, None, f"No request failed ({sum(requests.values()):,} requests "
                                  "across all targets and load points).", "errors")
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure()
    bottom = _stacked_bars(ax, targets, totals)
    top = max(bottom) if max(bottom) > 0 else 1.0
    for i, target in enumerate(targets):
        status = run.targets[target].status
        if status != "ok" and not requests[target]:
            note = f"not run ({status})"
        else:
            note = f"{int(bottom[i])} / {requests[target]}"
        ax.text(i, bottom[i] + top * 0.02, _text(note), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(targets)))
    ax.set_xticklabels([_text(t) for t in targets], rotation=20 if len(targets) > 3 else 0,
                       ha="right" if len(targets) > 3 else "center", fontsize=8)
    for label, target in zip(ax.get_xticklabels(), targets, strict=True):
        label.set_color(styles.get(target, ("#333333", "o"))[0])
    ax.set_ylim(0, top * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("requests (errors / total)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 5),
                   frameon=False, fontsize=8)
    return Chart(title, _png(fig), "Non-ok requests by status, summed over load points; "
                 "above each bar: errors / requests.", "errors")


def _error_totals(run: RunData,
                  targets: list[str]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Per target: non-ok requests by status, and all counted requests, over every point."""
    totals: dict[str, dict[str, int]] = {t: {} for t in targets}
    requests: dict[str, int] = dict.fromkeys(targets, 0)
    for point in run.points:
        for status, n in error_counts(point).items():
            totals[point.target][status] = totals[point.target].get(status, 0) + n
        requests[point.target] += point.requests.total + (point.dropped or 0)
    return totals, requests


def _stacked_bars(ax: Axes, targets: list[str], totals: dict[str, dict[str, int]]) -> list[float]:
    """One bar per target, stacked by status in a fixed order; returns each bar's height."""
    statuses = list(ERROR_STATUSES) + sorted(
        {s for counts in totals.values() for s in counts} - set(ERROR_STATUSES))
    xs = list(range(len(targets)))
    bottom = [0.0] * len(targets)
    for status in statuses:
        heights = [float(totals[t].get(status, 0)) for t in targets]
        if any(heights):
            ax.bar(xs, heights, bottom=bottom, label=_text(status), width=0.6,
                   color=STATUS_COLORS.get(status, "#999999"))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    return bottom


# --- matplotlib plumbing ---------------------------------------------------------------------

def _figure() -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _scale_x(ax: Axes, xs: list[float]) -> None:
    from matplotlib.ticker import NullLocator

    log = bool(xs) and xs[0] > 0 and _wide(xs, 7.9)
    if log:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(NullLocator())
    if len(xs) <= 12:
        ticks = _spaced(sorted(set(xs)), math.log2 if log else float)
        ax.set_xticks(ticks, [f"{x:g}" for x in ticks])


def _spaced(xs: list[float], scale: Callable[[float], float], share: float = 0.06
            ) -> list[float]:
    """The ticks of `xs` (sorted) at least `share` of the axis apart, ends kept: a capacity
    search's bisected levels (16, 17, 18, 20) would print over each other."""
    if len(xs) < 3:
        return xs
    gap = share * (scale(xs[-1]) - scale(xs[0]))
    kept = [xs[0]]
    for x in xs[1:-1]:
        if scale(x) - scale(kept[-1]) >= gap and scale(xs[-1]) - scale(x) >= gap:
            kept.append(x)
    return [*kept, xs[-1]]


def _wide(values: Sequence[float], ratio: float = WIDE_SPREAD) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and bool(positive) and max(positive) / min(positive) > ratio


def _text(value: object) -> str:
    """Data text for matplotlib: '$' would start mathtext, so it is escaped."""
    return str(value).replace("$", r"\$")
