"""The serving Pareto chart: total output tok/s against per-request decode speed, per target.

Each load level of a target is one point: x = tok/s one request sees while it streams
(1000 / TPOT p50), y = output tok/s of the whole server. Raising the load moves a point up
(more throughput) and left (each request slower); the upper-right envelope is the front, and a
target whose curve lies above and to the right of another's serves more users at the same
speed. Points are labelled by level (c=8, 2 req/s). The plotted values come from the pandas
frame (`harness.report.frame`) and are shown as a table under the chart.
"""

from __future__ import annotations

import pandas as pd

from harness.report.charts import Chart, _figure, _png, _text, _wide, target_styles
from harness.report.frame import first_repeats, metric, points_frame
from harness.report.run_data import RunData

COLUMNS = {"target": "target", "point": "point", "level": "level",
           "tok_s_per_request": "tok/s per request", "throughput.output_tok_s": "output tok/s"}


def pareto_frame(run: RunData) -> pd.DataFrame:
    """target, point, level, tok/s per request, output tok/s of every point that has both."""
    frame = first_repeats(points_frame(run.summary, run.run_id))
    frame = frame.assign(**{c: metric(frame, c) for c in ("tok_s_per_request",
                                                          "throughput.output_tok_s")})
    frame = frame.dropna(subset=["tok_s_per_request", "throughput.output_tok_s"])
    return frame[list(COLUMNS)].sort_values(["target", "level"])


def pareto_chart(run: RunData) -> Chart:
    title = "Throughput vs per-user speed (the serving Pareto front)"
    frame = pareto_frame(run)
    if frame.empty:
        return Chart(title, None, "No point has both a TPOT and an output throughput.",
                     "pareto")
    styles = target_styles(list(run.targets))
    fig, ax = _figure()
    for target, rows in frame.groupby("target", sort=False):
        color, marker = styles.get(str(target), ("#333333", "o"))
        ax.plot(rows["tok_s_per_request"], rows["throughput.output_tok_s"], "-",
                color=color, marker=marker, label=_text(target), linewidth=1.6)
        for _, row in rows.iterrows():
            ax.annotate(_text(row["point"]), (row["tok_s_per_request"],
                                              row["throughput.output_tok_s"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
    if _wide(list(frame["tok_s_per_request"])):
        ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("tok/s per request (1000 / TPOT p50) — faster for each user →")
    ax.set_ylabel("output tok/s (all requests)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=min(frame["target"].nunique(), 4),
               frameon=False, fontsize=8)
    best = frame.sort_values("throughput.output_tok_s").iloc[-1]
    alt = (f"{title}. Highest throughput: {best['target']} at {best['point']}, "
           f"{best['throughput.output_tok_s']:.0f} output tok/s with "
           f"{best['tok_s_per_request']:.1f} tok/s per request. " + "; ".join(
               f"{t}: {rows['throughput.output_tok_s'].max():.0f} tok/s at most"
               for t, rows in frame.groupby("target", sort=False)) + ".")
    note = ("Up is more total throughput, right is faster streaming for each user; each "
            "point is a load level. Look for the curve furthest up and to the right: it "
            "serves more tokens at the same per-user speed. Where a curve bends left without "
            "rising, more load only slows every request.")
    table = frame.rename(columns=COLUMNS).to_html(
        index=False, border=0, classes="data", float_format=lambda v: f"{v:,.1f}", na_rep="—")
    return Chart(title, _png(fig), note, "pareto", alt=alt, table=table)
