"""The index page: every run report grouped by scenario, and the `meta.json` it reads.

Each report folder holds `meta.json`, a small record of what the index shows (its headline
figures included), written when the report is built, so the index can be rebuilt from
`reports/` alone (the published site) without the raw results. When a results folder is given,
its files are read instead, and each run's compare page against the previous run of its
scenario is written when missing (`compare-<previous>-vs-<run>/`). Per scenario the index
draws the headline figures across runs (`harness.report.trend`) and lists its runs, newest
first, with their figures and a link to that compare page where one exists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.compare import compare, compare_dir_name, saved_noise
from harness.records.atomic import write_text
from harness.report.compare_page import write_compare
from harness.report.formatting import MISSING, esc, fmt_date, fmt_ms, fmt_tok_s, parse_date
from harness.report.frame import first_repeats, metric, points_frame
from harness.report.page import figure_html, html_document
from harness.report.request_charts import chosen_load
from harness.report.run_data import JSONDict, RunData, as_dict, as_list, load_run
from harness.report.trend import trend_chart

META_NAME = "meta.json"
COMPARE_PREFIX = "compare-"
REPORT_NAME = "index.html"


def run_meta(run: RunData) -> JSONDict:
    """What the index shows about one run, as JSON-ready values."""
    m = run.manifest
    drivers = sorted({p.driver for p in run.points if p.driver})
    return {
        "run": run.run_id,
        "scenario": run.scenario_name,
        "description": run.description,
        "created": m.created if m else None,
        "targets": list(run.targets),
        "failed_targets": [t for t, info in run.targets.items() if info.status != "ok"],
        "device": m.device if m else None,
        "model": m.model.spec if m else None,
        "model_hash": m.model.hash if m else None,
        "driver": (m.driver if m else None) or (", ".join(drivers) or None),
        "points": len(run.points),
        "flagged_points": sum(1 for p in run.points if p.flags),
        "headline": headline(run),
    }


def headline(run: RunData) -> JSONDict:
    """The best output tok/s and its target and load; the best TTFT p50 at the highest load
    every target ran, and its target (None where the run has no such figure)."""
    frame = first_repeats(points_frame(run.summary, run.run_id))
    out: JSONDict = {"best_tok_s": None, "best_target": None, "best_point": None,
                     "top_load": None, "top_ttft_p50_ms": None, "top_ttft_target": None}
    if frame.empty:
        return out
    frame = frame.assign(tok=metric(frame, "throughput.output_tok_s"),
                         ttft=metric(frame, "ttft_ms.p50"))
    with_tok = frame.dropna(subset=["tok"]).sort_values("tok")
    if not with_tok.empty:
        best = with_tok.iloc[-1]
        out.update(best_tok_s=float(best["tok"]), best_target=str(best["target"]),
                   best_point=str(best["point"]))
    label, chosen = chosen_load(run)
    top = frame[[chosen.get(str(t)) == p for t, p in zip(frame["target"], frame["point"],
                                                         strict=True)]]
    top = top.dropna(subset=["ttft"]).sort_values("ttft")
    out["top_load"] = label or None
    if not top.empty:
        out.update(top_ttft_p50_ms=float(top.iloc[0]["ttft"]),
                   top_ttft_target=str(top.iloc[0]["target"]))
    return out


def write_meta(report_dir: Path, run: RunData) -> Path:
    text = json.dumps(run_meta(run), indent=2, sort_keys=True, default=str) + "\n"
    return write_text(report_dir / META_NAME, text)


def read_meta(report_dir: Path, results_root: Path | None) -> JSONDict:
    """The run's meta from its results when available, else from `meta.json`, else its name."""
    if results_root is not None and (results_root / report_dir.name).is_dir():
        return run_meta(load_run(results_root / report_dir.name))
    try:
        data: Any = json.loads((report_dir / META_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    meta = as_dict(data)
    meta.setdefault("run", report_dir.name)
    return meta


def collect(reports_root: Path, results_root: Path | None = None) -> list[tuple[str, JSONDict]]:
    """(report folder name, meta) for every report under `reports_root`, newest first."""
    found: list[tuple[str, JSONDict]] = []
    if reports_root.is_dir():
        for child in reports_root.iterdir():
            if (child.is_dir() and (child / REPORT_NAME).is_file()
                    and not child.name.startswith(COMPARE_PREFIX)):
                found.append((child.name, read_meta(child, results_root)))
    found.sort(key=_newest_first_key, reverse=True)
    return found


def _newest_first_key(item: tuple[str, JSONDict]) -> tuple[datetime, str]:
    name, meta = item
    when = parse_date(meta.get("created"), str(meta.get("run") or name))
    if when is None:
        when = parse_date(None, name)
    if when is not None and when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return (when or datetime.min, name)


def index_html(runs: list[tuple[str, JSONDict]], compares: dict[str, str] | None = None) -> str:
    """The page; `compares`: run folder → href of its compare page against the previous run."""
    groups: dict[str, list[tuple[str, JSONDict]]] = {}
    for name, meta in runs:
        groups.setdefault(str(meta.get("scenario") or MISSING), []).append((name, meta))
    contents = " · ".join(f"<a href='#scenario-{i}'>{esc(s)}</a> ({len(g)})"
                          for i, (s, g) in enumerate(groups.items()))
    body = [f"<header><h1>patternbench runs</h1><p class='description'>Every stored run "
            f"({len(runs)}), grouped by scenario, newest first.</p>"
            + (f"<nav class='facts'>Scenarios: {contents}</nav>" if groups else "")
            + "</header>"]
    for i, (scenario, group) in enumerate(groups.items()):
        body.append(_scenario_section(i, scenario, group, compares or {}))
    if not runs:
        body.append("<p class='muted'>No run reports yet.</p>")
    return html_document("patternbench runs", "".join(body))


def _scenario_section(i: int, scenario: str, group: list[tuple[str, JSONDict]],
                      compares: dict[str, str]) -> str:
    head = ("<thead><tr><th>run</th><th>vs previous run</th><th>date</th>"
            "<th>best output tok/s</th><th>TTFT p50 at the top load</th><th>targets</th>"
            "<th>device</th><th>model</th></tr></thead>")
    rows = "".join(_row(name, meta, compares.get(name)) for name, meta in group)
    chart = figure_html(trend_chart(scenario, [m for _, m in group])) if len(group) > 1 else ""
    description = group[0][1].get("description")
    return (f"<section id='scenario-{i}'><h2>{esc(scenario)}</h2>"
            + (f"<p class='description'>{esc(description)}</p>" if description else "")
            + (f"<div class='charts'>{chart}</div>" if chart else "")
            + f"<div class='scroll'><table class='runs'>{head}<tbody>{rows}</tbody></table>"
            "</div></section>")


def _row(name: str, meta: JSONDict, compare_href: str | None) -> str:
    href = esc(quote(name, safe="") + "/" + REPORT_NAME)
    failed = {str(t) for t in as_list(meta.get("failed_targets"))}
    targets = ", ".join(
        (f"<span class='err' title='did not run cleanly'>{esc(t)} ✗</span>" if str(t) in failed
         else esc(t)) for t in as_list(meta.get("targets"))) or MISSING
    flagged = meta.get("flagged_points")
    if isinstance(flagged, int) and flagged:
        targets += f" <span class='badge'>⚠ {flagged} flagged point(s)</span>"
    model = esc(meta.get("model") or MISSING)
    if meta.get("model_hash"):
        model += f" <code>{esc(str(meta['model_hash'])[:8])}</code>"
    run_id = str(meta.get("run") or name)
    h = as_dict(meta.get("headline"))
    # the figure, then on its own line which target and load it is (keeps the table narrow)
    best = (f"{fmt_tok_s(h.get('best_tok_s'))}<br><span class='muted'>"
            f"{esc(h.get('best_target'))} · {esc(h.get('best_point'))}</span>"
            if h.get("best_target") else MISSING)
    ttft = (f"{fmt_ms(h.get('top_ttft_p50_ms'))} ms<br><span class='muted'>"
            f"{esc(h.get('top_ttft_target'))} · {esc(h.get('top_load'))}</span>"
            if h.get("top_ttft_target") else MISSING)
    link = f"<a href='{esc(compare_href)}'>compare</a>" if compare_href else MISSING
    return (f"<tr><th scope='row'><a href='{href}'>{esc(run_id)}</a></th><td>{link}</td>"
            f"<td class='num'>{fmt_date(meta.get('created'), run_id)}</td>"
            f"<td class='num'>{best}</td><td class='num'>{ttft}</td>"
            f"<td>{targets}</td><td>{esc(meta.get('device') or MISSING)}</td><td>{model}</td>"
            "</tr>")


def compare_pages(reports_root: Path, runs: list[tuple[str, JSONDict]],
                  results_root: Path | None) -> dict[str, str]:
    """Run folder → href of its compare page against the previous run of the same scenario;
    the page is written first when missing and both runs' results are in `results_root`."""
    previous: dict[str, str] = {}
    links: dict[str, str] = {}
    for name, meta in reversed(runs):  # oldest first
        scenario = str(meta.get("scenario"))
        before = previous.get(scenario)
        previous[scenario] = name
        if before is None:
            continue
        folder = reports_root / compare_dir_name([before, name])
        if not (folder / REPORT_NAME).is_file() and results_root is not None and all(
                (results_root / n / "summary.json").is_file() for n in (before, name)):
            pair = [load_run(results_root / before), load_run(results_root / name)]
            write_compare(compare(pair, saved_noise(pair)), folder)
        if (folder / REPORT_NAME).is_file():
            links[name] = quote(folder.name, safe="") + "/" + REPORT_NAME
    return links


def write_index(reports_root: Path, results_root: Path | None = None) -> Path:
    runs = collect(reports_root, results_root)
    links = compare_pages(reports_root, runs, results_root)
    return write_text(reports_root / REPORT_NAME, index_html(runs, links))
