"""A comparison of runs as a self-contained HTML page and a Markdown file.

The page: the runs compared, a warning per difference of scenario, model or machine, the
curves of every run overlaid (one colour per target, one line style per run: throughput and
TTFT p50 against load), then per later run and target a table of every point's deltas, each
cell `before → after`, the change in % with its 95% interval, and improved / regressed /
unchanged as a word and a colour. `compare.md` holds the same deltas as a Markdown table
(`DataFrame.to_markdown`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from harness.compare import METRICS, Comparison, compare, compare_dir_name, saved_noise
from harness.gate.baseline import BASELINES
from harness.records.atomic import write_text
from harness.report.charts import Chart, _figure, _png, _scale_x, _text, target_styles
from harness.report.formatting import esc, fmt_number
from harness.report.frame import first_repeats, metric
from harness.report.page import figure_html, html_document
from harness.report.run_data import load_run

RUN_STYLES = ("-", "--", ":", "-.")
WORDS = {"improved": "improved", "regressed": "regressed", "unchanged": "unchanged",
         "unknown": "not judged"}
HTML_NAME, MD_NAME = "index.html", "compare.md"


def compare_runs(run_dirs: Sequence[Path], reports_root: Path,
                 baselines_root: Path = BASELINES) -> tuple[Path, Path]:
    """Write `reports_root/compare-<a>-vs-<b>/index.html` and `compare.md`; return both. The
    run-to-run noise comes from the first run's saved baseline under `baselines_root`."""
    runs = [load_run(Path(d)) for d in run_dirs]
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs")
    return write_compare(compare(runs, saved_noise(runs, baselines_root)),
                         reports_root / compare_dir_name([r.run_id for r in runs]))


def write_compare(comparison: Comparison, out_dir: Path) -> tuple[Path, Path]:
    html = write_text(out_dir / HTML_NAME, compare_html(comparison))
    return html, write_text(out_dir / MD_NAME, compare_markdown(comparison))


def compare_html(c: Comparison) -> str:
    ref = c.runs[0]
    runs = "".join(
        f"<li><a href='../{esc(r.run_id)}/index.html'>{esc(r.run_id)}</a> — "
        f"{esc(r.scenario_name)}{' (reference)' if r is ref else ''} · line "
        f"<code>{esc(RUN_STYLES[i % len(RUN_STYLES)])}</code></li>"
        for i, r in enumerate(c.runs))
    warnings = "".join(f"<li>{esc(w)}</li>" for w in c.warnings)
    description = ref.description
    body = [f"<header><h1>Compare: {esc(ref.scenario_name)}</h1>"
            + (f"<p class='description'>{esc(description)}</p>" if description else "")
            + f"<p class='headline'><strong>{esc(c.headline)}</strong></p>"
            + f"<p>Every later run against {esc(ref.run_id)}.</p><ul>{runs}</ul></header>"]
    if warnings:
        body.append("<div class='callout warn'><strong>These runs differ; read the deltas "
                    f"with that in mind:</strong><ul>{warnings}</ul></div>")
    body.append("<h2 id='charts'>Curves overlaid</h2><div class='charts'>")
    body += [figure_html(chart) for chart in overlay_charts(c)]
    body.append("</div><h2 id='deltas'>Deltas per target and load point</h2><p class='muted'>"
                "Each cell: reference → this run, the change in % and its 95% interval, which "
                "holds the run-to-run noise: from repeats (Welch, or a prediction interval when "
                "one side has them) or from the spread of this scenario's saved baseline runs on "
                "this machine kind; without either a cell cannot be judged. Improved / regressed "
                "only when the interval excludes 0 and the cell stays significant under "
                "Benjamini–Hochberg at 5% false discoveries over the page (docs/gates.md)."
                "</p>")
    body.append(_delta_tables(c.deltas))
    body.append("<footer><a href='../index.html'>All runs</a></footer>")
    return html_document(f"compare {' vs '.join(r.run_id for r in c.runs)}", "".join(body))


def _delta_tables(deltas: pd.DataFrame) -> str:
    if deltas.empty:
        return "<p class='muted'>The runs have no target × load point in common.</p>"
    parts = []
    labels = dict(METRICS)
    for (run_b, target), rows in deltas.groupby(["run_b", "target"], sort=False):
        head = "".join(f"<th>{esc(labels[m])}</th>" for m, _ in METRICS)
        body = "".join(
            f"<tr><th scope='row'>{esc(point)}</th>"
            + "".join(_cell(cells[cells["metric"] == m]) for m, _ in METRICS) + "</tr>"
            for point, cells in rows.groupby("point", sort=False))
        parts.append(f"<h3>{esc(target)} <span class='muted'>· {esc(run_b)}</span></h3>"
                     f"<div class='scroll'><table class='points compare'><thead><tr>"
                     f"<th>point</th>{head}</tr></thead><tbody>{body}</tbody></table></div>")
    return "".join(parts)


def _cell(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "<td class='num'>—</td>"
    row = rows.iloc[0]
    direction = str(row["direction"])
    text = f"{fmt_number(_num(row['before']))} → {fmt_number(_num(row['after']))}"
    why = row.get("why")
    title = f" title='{esc(why)}'" if isinstance(why, str) and why else ""
    return (f"<td class='num delta {direction}'{title}>{text}<br>{esc(change_text(row))}"
            f"<br><strong>{WORDS.get(direction, direction)}</strong></td>")


def change_text(row: pd.Series) -> str:
    """'+12.3% [+4.1, +20.9]' (interval omitted when there is none)."""
    pct, lo, hi = _num(row["pct"]), _num(row["pct_lo"]), _num(row["pct_hi"])
    if pct is None:
        return "—"
    text = f"{pct:+.1f}%"
    return text + (f" [{lo:+.1f}, {hi:+.1f}]" if lo is not None and hi is not None else "")


def _num(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def compare_markdown(c: Comparison) -> str:
    lines = [f"# Compare: {c.runs[0].scenario_name}", "", f"**{c.headline}**", "",
             *(f"- {r.run_id}{' (reference)' if i == 0 else ''}" for i, r in enumerate(c.runs)),
             ""]
    lines += [f"> **Warning:** {w}" for w in c.warnings] + ([""] if c.warnings else [])
    if c.deltas.empty:
        return "\n".join([*lines, "The runs have no target × load point in common.", ""])
    table = c.deltas.assign(
        before=c.deltas["before"].map(lambda v: fmt_number(_num(v))),
        after=c.deltas["after"].map(lambda v: fmt_number(_num(v))),
        change=[change_text(row) for _, row in c.deltas.iterrows()],
        verdict=c.deltas["direction"].map(lambda d: WORDS.get(str(d), str(d))),
    )[["run_b", "target", "point", "label", "before", "after", "change", "verdict"]]
    table = table.rename(columns={"run_b": "run", "label": "metric"})
    return "\n".join([*lines, table.to_markdown(index=False), ""])


def overlay_charts(c: Comparison) -> list[Chart]:
    """Output tok/s and TTFT p50 against load, every run overlaid."""
    return [_overlay(c, "throughput.output_tok_s", "Output tokens/s vs load, runs overlaid",
                     "output tokens/s", "Higher is better.", "compare_throughput"),
            _overlay(c, "ttft_ms.p50", "TTFT p50 vs load, runs overlaid", "TTFT p50 (ms)",
                     "Lower is better.", "compare_ttft")]


def _overlay(c: Comparison, column: str, title: str, ylabel: str, how: str,
             kind: str) -> Chart:
    frame = first_repeats(c.points).assign(value=lambda f: metric(f, column))
    frame = frame.dropna(subset=["level", "value"])
    if frame.empty:
        return Chart(title, None, "No run has a value to plot.", kind)
    styles = target_styles(sorted(set(frame["target"])))
    fig, ax = _figure()
    for i, run in enumerate(r.run_id for r in c.runs):
        for target, rows in frame[frame["run"] == run].groupby("target", sort=True):
            rows = rows.sort_values("level")
            color, marker = styles[str(target)]
            ax.plot(rows["level"].astype(float), rows["value"], RUN_STYLES[i % len(RUN_STYLES)],
                    color=color, marker=marker, label=_text(f"{target} · {run}"))
    _scale_x(ax, sorted({float(x) for x in frame["level"]}))
    ax.set_xlabel("load level (concurrency or req/s)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=7)
    note = (f"One colour per target, one line style per run (solid: the reference). {how} "
            "Where a later run's line leaves the reference's, that target changed.")
    return Chart(title, _png(fig), note, kind)
