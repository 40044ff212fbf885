"""A scenario's key figures across its runs, for the index: the trend chart and its data.

Two panels side by side against the runs in date order: the best output tok/s of any target
(higher is better), and the best TTFT p50 at the highest load every target ran (lower is
better). The figures are the ones each run's `meta.json` holds (`headline`), so the index
needs no results.
"""

from __future__ import annotations

import pandas as pd

from harness.report.charts import Chart, _png, _text
from harness.report.run_data import JSONDict, as_dict, as_float

PANELS = (("best_tok_s", "best output tok/s", "#1f77b4"),
          ("top_ttft_p50_ms", "best TTFT p50 at the top load (ms)", "#d62728"))


def trend_frame(runs: list[JSONDict]) -> pd.DataFrame:
    """One row per run (oldest first): run id and the headline figures (NaN where none)."""
    rows = [{"run": str(m.get("run")),
             **{key: as_float(as_dict(m.get("headline")).get(key)) for key, _, _ in PANELS}}
            for m in reversed(runs)]
    return pd.DataFrame(rows, columns=["run", *(key for key, _, _ in PANELS)])


def trend_chart(scenario: str, runs: list[JSONDict]) -> Chart:
    """`runs`: the scenario's metas, newest first (as the index lists them)."""
    title = f"{scenario}: key figures across runs"
    frame = trend_frame(runs)
    kind, detail = "trend", scenario
    if len(frame) < 2 or frame[[k for k, _, _ in PANELS]].isna().all().all():
        return Chart(title, None, "A trend needs two runs with figures.", kind, detail)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # side by side and wide: the chart spans the index's full width (a tall 6.4-inch figure
    # was drawn there at twice its size)
    fig = Figure(figsize=(11, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharex=True)
    xs = list(range(len(frame)))
    for ax, (key, label, color) in zip(axes, PANELS, strict=True):
        ax.plot(xs, frame[key], "o-", color=color)
        ax.set_ylabel(_text(label), fontsize=8)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_xticks(xs, [_text(r[:15]) for r in frame["run"]], rotation=20, fontsize=7,
                      ha="right")
    fig.suptitle(_text(title), fontsize=11)
    last = frame.iloc[-1]
    alt = (f"{title}, {len(frame)} runs; latest {last['run']}: "
           + ", ".join(f"{label} {last[key]:,.1f}" for key, label, _ in PANELS
                       if pd.notna(last[key])) + ".")
    table = frame.to_html(index=False, border=0, classes="data", na_rep="—",
                          float_format=lambda v: f"{v:,.1f}")
    note = ("Oldest run on the left. A drop in the left panel or a rise in the right one "
            "is a run that served worse; open its compare page below to see where.")
    return Chart(title, _png(fig), note, kind, detail, alt=alt, table=table)
