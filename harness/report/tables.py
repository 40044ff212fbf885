"""Per-target sections: one table row per load point, warnings, errors, and every other metric.

The main table (`harness.report.points_table`, its numbers read from the pandas frame) shows
the numbers people compare; a collapsible block under it shows every key
of every point (full distributions, telemetry, keys added after this code was written), so a
new metric appears in the report without a change here.
"""

from __future__ import annotations

from typing import Any

from harness.records.redact import redact
from harness.records.typed_json import encode
from harness.report.formatting import (
    MISSING,
    esc,
    fmt_count,
    fmt_ms,
    fmt_number,
    fmt_value,
)
from harness.report.points_table import badges, points_table, too_few_title
from harness.report.repeats_table import repeats_table
from harness.report.run_data import (
    DIST_KEYS,
    JSONDict,
    dist_stat,
    is_distribution,
    load_label,
    load_level,
)
from harness.summary.record import PointSummary, TargetRun
from harness.verdict.anchors import target_anchor

SHOWN_ELSEWHERE = ("target", "target_name", "point", "load")
MAX_DEPTH = 4


def target_section(target: str, info: TargetRun, points: list[PointSummary], color: str,
                   targets: list[str]) -> str:
    """One target's section: header, error if it did not run, warnings, table and details.
    `targets` (the run's labels in report order) gives the section and row ids (anchors)."""
    anchor = target_anchor(targets, target)
    points = sorted(points, key=lambda p: (load_level(p) is None, load_level(p) or 0.0,
                                           p.repeat))
    status = info.status
    parts = [
        f"<section class='target' id='{anchor}'>",
        f"<h3><span class='swatch' style='background:{color}'></span>{esc(target)} "
        f"<span class='status {'ok' if status == 'ok' else 'bad'}'>{esc(status)}</span></h3>",
        _target_facts(info, points),
    ]
    if status != "ok" or info.error:
        during = f" It died during {esc(info.failed_point)}." if info.failed_point else ""
        skipped = (f" Not run: {esc(', '.join(info.skipped))}." if info.skipped else "")
        parts.append(f"<div class='callout error'><strong>{esc(target)} did not run cleanly."
                     f"</strong>{during} {esc(info.error or 'No error message was recorded.')}"
                     f"{skipped}</div>")
    parts.append(_flag_callout(points))
    parts.append(_missing_ttft_note(points))
    if points:
        parts.append(points_table(points, targets))
        parts.append(repeats_table(points))
        parts.append("<details class='all-metrics'><summary>All metrics per load point "
                     f"({len(points)})</summary>{''.join(map(point_details, points))}</details>")
    elif status == "ok":
        parts.append("<p class='muted'>No load point was measured for this target.</p>")
    parts.append("</section>")
    return "".join(p for p in parts if p)


def _target_facts(info: TargetRun, points: list[PointSummary]) -> str:
    facts: list[str] = []
    if info.name:
        facts.append(f"pattern <code>{esc(info.name)}</code>")
    if info.options:
        facts.append("options " + ", ".join(
            f"<code>{esc(k)}={fmt_value(v)}</code>" for k, v in redact(info.options).items()))
    if info.startup_s is not None:
        facts.append(f"started in {info.startup_s:.1f} s")
    drivers = sorted({p.driver for p in points if p.driver})
    if drivers:
        facts.append("driver " + esc(", ".join(drivers)))
    kinds = sorted({p.load.kind or "?" for p in points})
    if kinds:
        facts.append("load " + esc(", ".join(kinds)))
    streams = {p.stream for p in points}
    if streams:
        facts.append("streaming" if streams == {True} else
                     "not streaming" if streams == {False} else "streaming and not")
    return f"<p class='facts'>{' · '.join(facts)}</p>" if facts else ""


def _flag_callout(points: list[PointSummary]) -> str:
    items = [f"<li><strong>{esc(load_label(p))}</strong>: {badges(_flags(p))}</li>"
             for p in points if _flags(p)]
    if not items:
        return ""
    return ("<div class='callout warn'><strong>⚠ Warnings on these load points</strong> "
            "— their numbers may not mean what they seem:<ul>" + "".join(items) + "</ul></div>")


def _missing_ttft_note(points: list[PointSummary]) -> str:
    """Why a point with completed requests shows no latency: none was sent after warm-up and
    finished inside the point, or the driver saw no first token."""
    unmeasured = [p for p in points if p.e2e_ms is None and p.requests.ok > 0]
    no_token = [p for p in points if p.ttft_ms is None and p.e2e_ms is not None]
    notes = []
    if unmeasured:
        notes.append(
            "<p class='note'>Latencies show — for " + ", ".join(
                f"{esc(load_label(p))} ({p.requests.ok:,} ok)" for p in unmeasured)
            + ": latencies count only requests sent after warm-up, and none of those finished "
            "within the point (one request outlasts the measured window). Lengthen the point "
            "or set <code>min_requests</code>.</p>")
    if no_token:
        where = ", ".join(
            esc(load_label(p)) + (f" (TTFB p50 {fmt_ms(dist_stat(p, 'ttfb_ms', 'p50'))} ms)"
                                  if dist_stat(p, "ttfb_ms", "p50") is not None else "")
            for p in no_token)
        notes.append("<p class='note'>TTFT shows — for " + where + ": no first-token time was "
                     "recorded (the driver saw only the first byte, as k6 does, or the response "
                     "was not streamed).</p>")
    return "".join(notes)


def _num(text: str) -> str:
    return f"<td class='num'>{text}</td>"


def _flags(p: PointSummary) -> list[str]:
    return [f for f in p.flags if f]


def point_details(p: PointSummary) -> str:
    """Every field of one point: distributions as a table, everything else as name → value."""
    dists: list[tuple[str, JSONDict]] = []
    values: list[tuple[str, Any]] = []
    for key, value in encode(p).items():
        if key not in SHOWN_ELSEWHERE:
            _flatten(str(key), value, dists, values, 0)
    label = f"{load_label(p)} · point {p.point or '?'} · target {p.target}"
    out = [f"<h4>{esc(label)}</h4>"]
    if dists:
        head = "".join(f"<th>{k}</th>" for k in DIST_KEYS) + (
            "<th title='95% confidence interval of p50 and p99'>ci95 p50 · p99</th>")
        rows = "".join(
            f"<tr><th scope='row'><code>{esc(name)}</code></th>"
            + "".join(_dist_cell(name, k, d) for k in DIST_KEYS)
            + _num(_ci_text(name, d.get("ci95"))) + "</tr>"
            for name, d in dists)
        out.append(f"<div class='scroll'><table class='dists'><thead><tr><th>metric</th>{head}"
                   f"</tr></thead><tbody>{rows}</tbody></table></div>")
    if values:
        out.append("<dl class='kv pairs'>" + "".join(
            f"<div><dt><code>{esc(name)}</code></dt><dd>{fmt_value(v)}</dd></div>"
            for name, v in values) + "</dl>")
    return "".join(out)


def _dist_cell(name: str, stat: str, dist: JSONDict) -> str:
    text = _stat(name, stat, dist.get(stat))
    too_few = dist.get("too_few")
    if isinstance(too_few, list) and stat in too_few:
        return (f"<td class='num too-few' title='{esc(too_few_title(stat, dist.get('count')))}'>"
                f"{text}</td>")
    return _num(text)


def _ci_text(name: str, ci: object) -> str:
    """`[lo, hi]` of p50 and p99 (— where there is none)."""
    if not isinstance(ci, dict):
        return MISSING
    parts = []
    for stat in ("p50", "p99"):
        pair = ci.get(stat)
        parts.append(f"{_stat(name, stat, pair[0])}–{_stat(name, stat, pair[1])}"
                     if isinstance(pair, list) and len(pair) == 2 else MISSING)
    return " · ".join(parts)


def _stat(metric: str, stat: str, value: object) -> str:
    if stat == "count":
        return fmt_count(value)
    return fmt_ms(value) if metric.endswith("_ms") else fmt_number(value)


def _flatten(name: str, value: Any, dists: list[tuple[str, JSONDict]],
             values: list[tuple[str, Any]], depth: int) -> None:
    if is_distribution(value):
        dists.append((name, value))
    elif isinstance(value, dict) and value and depth < MAX_DEPTH:
        for key, inner in value.items():
            _flatten(f"{name}.{key}", inner, dists, values, depth + 1)
    else:
        values.append((name, value))
