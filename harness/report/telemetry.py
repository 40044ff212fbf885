"""Telemetry summary: each numeric field of `telemetry/<target>.jsonl`, as count / mean / max.

The record shape belongs to the telemetry stage and may grow; this reads any JSON object per
line, flattens nested objects to dotted names (`gpu.util_pct`) and summarizes every number,
so new fields show up without a change here. Clock fields are left out.
"""

from __future__ import annotations

from typing import Any

from harness.report.formatting import esc, fmt_count, fmt_number
from harness.report.run_data import JSONDict, as_float

CLOCK_KEYS = frozenset({"t", "ts", "time", "timestamp", "at", "t_s", "elapsed_s"})
MAX_FIELDS = 60


def summarize_records(records: list[JSONDict]) -> dict[str, list[float]]:
    """Dotted field name → its numeric values, in record order."""
    fields: dict[str, list[float]] = {}
    for record in records:
        for name, value in _numbers("", record, 0):
            fields.setdefault(name, []).append(value)
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
