"""The index page listing every run report, newest first, and the `meta.json` it reads.

Each report folder holds `meta.json`, a small record of what the index shows, written when
the report is built, so the index can be rebuilt from `reports/` alone (the published site)
without the raw results. When a results folder is given, its files are read instead.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.atomic import write_text
from harness.report.formatting import MISSING, esc, fmt_date, parse_date
from harness.report.page import html_document
from harness.report.run_data import JSONDict, RunData, as_dict, as_list, load_run

META_NAME = "meta.json"
REPORT_NAME = "index.html"


def run_meta(run: RunData) -> JSONDict:
    """What the index shows about one run, as JSON-ready values."""
    model = as_dict(run.manifest.get("model"))
    drivers = sorted({p.driver for p in run.points if p.driver})
    return {
        "run": run.run_id,
        "scenario": run.scenario_name,
        "created": run.manifest.get("created"),
        "targets": list(run.targets),
        "failed_targets": [t for t, info in run.targets.items() if info.status != "ok"],
        "device": run.manifest.get("device"),
        "model": model.get("spec"),
        "model_hash": model.get("hash"),
        "driver": run.manifest.get("driver") or (", ".join(drivers) or None),
        "points": len(run.points),
        "flagged_points": sum(1 for p in run.points if p.flags),
    }


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
            if child.is_dir() and (child / REPORT_NAME).is_file():
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


def index_html(runs: list[tuple[str, JSONDict]]) -> str:
    head = ("<thead><tr><th>run</th><th>scenario</th><th>date</th><th>targets</th>"
            "<th>device</th><th>model</th><th>report</th></tr></thead>")
    rows = "".join(_row(name, meta) for name, meta in runs)
    table = (f"<div class='scroll'><table class='runs'>{head}<tbody>{rows}</tbody></table></div>"
             if runs else "<p class='muted'>No run reports yet.</p>")
    body = ("<header><h1>patternbench runs</h1><p class='description'>Every stored run, newest "
            f"first ({len(runs)}).</p></header>{table}")
    return html_document("patternbench runs", body)


def _row(name: str, meta: JSONDict) -> str:
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
    return (f"<tr><th scope='row'><a href='{href}'>{esc(run_id)}</a></th>"
            f"<td>{esc(meta.get('scenario') or MISSING)}</td>"
            f"<td class='num'>{fmt_date(meta.get('created'), run_id)}</td>"
            f"<td>{targets}</td><td>{esc(meta.get('device') or MISSING)}</td><td>{model}</td>"
            f"<td><a href='{href}'>open</a></td></tr>")


def write_index(reports_root: Path, results_root: Path | None = None) -> Path:
    return write_text(reports_root / REPORT_NAME,
                      index_html(collect(reports_root, results_root)))
