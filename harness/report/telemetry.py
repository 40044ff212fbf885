"""Telemetry in the report: per target, a timeline chart, a table of each load point's telemetry
summary (the `telemetry` object of its summary.json entry), and every numeric field of
`telemetry/<target>.jsonl` as count / mean / max / last.

The record shapes belong to the telemetry stage (`harness.telemetry`) and may grow: the field
table reads any JSON object per line, flattens nested objects to dotted names prefixed with the
record's `kind` (`host.target_cpu_pct`), and summarizes every number, so new fields show up
without a change here. Clock fields, span bounds and GPU indices are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.report.charts import Chart
from harness.report.formatting import MISSING, esc, fmt_count, fmt_ms, fmt_number
from harness.report.run_data import (
    JSONDict,
    RunData,
    as_float,
    load_label,
    load_level,
    stat,
)
from harness.report.timeline import timeline_chart
from harness.summary.record import PointSummary

CLOCK_KEYS = frozenset({"t", "ts", "time", "timestamp", "at", "t_s", "elapsed_s", "start", "end",
                        "warmup_end", "gpu"})
MAX_FIELDS = 60


def summarize_records(records: list[JSONDict]) -> dict[str, list[float]]:
    """Dotted field name → its numeric values, in record order."""
    fields: dict[str, list[float]] = {}
    for record in records:
        kind = record.get("kind")
        prefix = f"{kind}." if isinstance(kind, str) and kind else ""
        for name, value in _numbers("", record, 0):
            fields.setdefault(prefix + name, []).append(value)
    return fields


def _numbers(prefix: str, value: Any, depth: int) -> list[tuple[str, float]]:
    if isinstance(value, dict) and depth < 4:
        out: list[tuple[str, float]] = []
        for key, inner in value.items():
            if depth == 0 and str(key) in CLOCK_KEYS:
                continue
            out.extend(_numbers(f"{prefix}{key}" if not prefix else f"{prefix}.{key}",
                                inner, depth + 1))
        return out
    number = as_float(value)
    return [(prefix, number)] if number is not None and prefix else []


def telemetry_html(telemetry: dict[str, list[JSONDict]]) -> str:
    """A table per target; empty string when the run has no telemetry."""
    if not telemetry:
        return ""
    parts: list[str] = []
    for target, records in telemetry.items():
        fields = summarize_records(records)
        parts.append(f"<h4>{esc(target)} <span class='muted'>({len(records):,} records)</span>"
                     "</h4>")
        if not fields:
            parts.append("<p class='muted'>No numeric fields.</p>")
            continue
        rows = "".join(
            f"<tr><th scope='row'><code>{esc(name)}</code></th>"
            f"<td class='num'>{fmt_count(len(values))}</td>"
            f"<td class='num'>{fmt_number(sum(values) / len(values))}</td>"
            f"<td class='num'>{fmt_number(max(values))}</td>"
            f"<td class='num'>{fmt_number(values[-1])}</td></tr>"
            for name, values in list(fields.items())[:MAX_FIELDS])
        more = len(fields) - MAX_FIELDS
        parts.append(
            "<div class='scroll'><table class='dists'><thead><tr><th>field</th><th>n</th>"
            f"<th>mean</th><th>max</th><th>last</th></tr></thead><tbody>{rows}</tbody></table>"
            "</div>" + (f"<p class='muted'>{more} more fields not shown.</p>" if more > 0 else ""))
    return "".join(parts)


def telemetry_section(run: RunData, figure: Callable[[Chart], str]) -> str:
    """Per target: timeline, per-point telemetry table, field summary; '' when there is none.

    `figure` renders a chart the way the page renders its other figures."""
    targets = [t for t in run.targets
               if t in run.telemetry or any(p.telemetry for p in _points(run, t))]
    targets += [t for t in run.telemetry if t not in targets]
    parts: list[str] = []
    for target in targets:
        records = run.telemetry.get(target, [])
        parts.append(f"<h3>{esc(target)}</h3>")
        if records:
            parts.append(f"<div class='charts'>{figure(timeline_chart(target, records))}</div>")
        points = _points(run, target)
        if any(p.telemetry for p in points):
            parts.append(_point_table(points))
        if records:
            parts.append("<details><summary>Every telemetry field "
                         f"({len(records):,} records)</summary>"
                         f"{telemetry_html({target: records})}</details>")
    return "".join(parts)


def _points(run: RunData, target: str) -> list[PointSummary]:
    points = [p for p in run.points if p.target == target]
    return sorted(points, key=lambda p: (load_level(p) is None, load_level(p) or 0.0))


def _point_table(points: list[PointSummary]) -> str:
    reasons = sorted({p.telemetry.gpu.reason for p in points
                      if p.telemetry and not p.telemetry.gpu.available
                      and p.telemetry.gpu.reason})
    note = (f"<p class='muted'>No GPU telemetry: {esc('; '.join(reasons))}.</p>"
            if reasons else "")
    head = ("<thead><tr><th rowspan='2'>load</th><th colspan='5'>GPU</th>"
            "<th colspan='3'>target process tree</th><th rowspan='2'>driver<br>CPU %<br>mean</th>"
            "<th colspan='2'>/health ms</th><th colspan='3'>server max</th></tr><tr>"
            "<th>util %<br>mean</th><th>util %<br>max</th><th>mem peak<br>MiB</th>"
            "<th>energy<br>J</th><th>tokens<br>/ J</th><th>CPU %<br>mean</th>"
            "<th>CPU %<br>max</th><th>RSS peak<br>MiB</th><th>p50</th><th>p99</th>"
            "<th>in flight</th><th>queue</th><th>batch</th></tr></thead>")
    rows = "".join(_point_row(p) for p in points)
    return (f"{note}<div class='scroll'><table class='points'>{head}<tbody>{rows}</tbody>"
            "</table></div><p class='muted'>Over each point's measured window. CPU % counts "
            "100 per busy core; RSS sums the tree's processes (shared pages once per "
            "process). Energy integrates board power; tokens / J = output tokens / energy.</p>")


def _point_row(point: PointSummary) -> str:
    tel = point.telemetry
    if tel is None:
        return (f"<tr><th scope='row'>{esc(load_label(point, with_kind=False))}</th>"
                + f"<td class='num'>{MISSING}</td>" * 14 + "</tr>")
    gpu, target, driver, health, server = tel.gpu, tel.target, tel.driver, tel.health, tel.server
    cells = [
        stat(gpu.util_pct, "mean"), stat(gpu.util_pct, "max"), gpu.mem_used_peak_mb,
        gpu.energy_j, None, stat(target.cpu_pct, "mean"), stat(target.cpu_pct, "max"),
        target.rss_peak_mb, stat(driver.cpu_pct, "mean"),
    ]
    text = [fmt_number(None if v is None else round(float(v), 1)) for v in cells]
    text[4] = fmt_number(gpu.tokens_per_j)  # often below 1: keep fmt_number's 3 decimals
    text += [fmt_ms(stat(health.latency_ms, "p50")), fmt_ms(stat(health.latency_ms, "p99"))]
    text += [fmt_number(v) for v in (server.in_flight_max, server.queue_depth_max,
                                     server.batch_size_max)]
    if health.failed:
        text[10] += f" <span class='err'>({health.failed:g} failed)</span>"
    if server.prefix_cache_hit_pct is not None:
        hits = server.prefix_cache_hit_pct
        text[13] += f" <span class='muted'>(prefix cache hits {hits:g}%)</span>"
    return (f"<tr><th scope='row'>{esc(load_label(point, with_kind=False))}</th>"
            + "".join(f"<td class='num'>{t or MISSING}</td>" for t in text) + "</tr>")
