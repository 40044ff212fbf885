"""Per-target sections: one table row per load point, warnings, errors, and every other metric.

The main table shows the numbers people compare; a collapsible block under it shows every key
of every point (full distributions, telemetry, keys added after this code was written), so a
new metric appears in the report without a change here.
"""

from __future__ import annotations

import json
from typing import Any

from harness.report.anchors import point_anchor, target_anchor
from harness.report.formatting import (
    MISSING,
    esc,
    fmt_count,
    fmt_fraction,
    fmt_ms,
    fmt_number,
    fmt_rate,
    fmt_tok_s,
    fmt_value,
)
from harness.report.repeats_table import repeats_table
from harness.report.run_data import (
    DIST_KEYS,
    JSONDict,
    dist_stat,
    error_counts,
    is_distribution,
    load_label,
    load_level,
    measured_rate,
)
from harness.secrets import redact
from harness.summary import Distribution, Goodput, PointSummary, ProbeSummary, TargetRun
from harness.typed_json import encode

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
        parts.append(_points_table(points, targets))
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
    items = [f"<li><strong>{esc(load_label(p))}</strong>: {_badges(p)}</li>"
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


def _points_table(points: list[PointSummary], targets: list[str]) -> str:
    head = (
        "<thead><tr><th rowspan='2'>load</th><th colspan='3'>requests</th>"
        "<th colspan='2'>TTFT ms</th><th colspan='2'>TPOT ms</th><th colspan='2'>ITL ms</th>"
        "<th colspan='3'>E2E ms</th><th colspan='2'>throughput</th>"
        "<th rowspan='2'>goodput<br>req/s</th>"
        "<th rowspan='2' title='achieved concurrency'>conc.</th>"
        "<th rowspan='2' title='dispatch lag p99'>lag<br>p99 ms</th>"
        "<th rowspan='2' title='/health probe p99, timed-out probes counted at the timeout'>"
        "/health<br>p99 ms</th><th rowspan='2'>flags</th>"
        "</tr><tr>"
        "<th>ok</th><th>errors</th><th title='arrivals the driver never sent'>dropped</th>"
        "<th>p50</th><th>p99</th><th>p50</th><th>p99</th>"
        "<th>p50</th><th>p99</th><th>p50</th><th>p99</th><th title='from scheduled time'>"
        "sched<br>p99</th><th>req/s</th><th>out<br>tok/s</th></tr></thead>"
    )
    rows, seen = [], set()
    for p in points:  # the id goes on a point's first row (its first repeat)
        anchor = point_anchor(targets, p.target, p.point) if p.point not in seen else None
        seen.add(p.point)
        rows.append(_point_row(p, anchor))
    return (f"<div class='scroll'><table class='points'>{head}<tbody>" + "".join(rows)
            + "</tbody></table></div>")


def _point_row(p: PointSummary, anchor: str | None) -> str:
    throughput = p.throughput
    label = load_label(p, with_kind=False) + (f" · repeat {p.repeat}" if p.repeat else "")
    cells = [
        f"<th scope='row'>{esc(label)}</th>",
        _num(fmt_count(p.requests.ok)),
        f"<td class='errs'>{_errors_cell(p)}</td>",
        _num(fmt_count(p.dropped)),
        *(_percentile_cell(getattr(p, metric), stat)
          for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms") for stat in ("p50", "p99")),
        _percentile_cell(p.e2e_sched_ms, "p99"),
        _num(fmt_rate(measured_rate(p, throughput.req_s))),
        _num(fmt_tok_s(measured_rate(p, throughput.output_tok_s))),
        _goodput_cell(p.goodput),
        _num(fmt_number(p.achieved_concurrency)),
        _percentile_cell(p.dispatch_lag_ms, "p99"),
        _probe_cell(p.probe),
        f"<td>{_badges(p)}</td>",
    ]
    attrs = (f" id='{anchor}'" if anchor else "") + (" class='flagged'" if _flags(p) else "")
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def too_few_title(stat: str, count: object) -> str:
    """The tooltip of a percentile drawn from too few values."""
    return (f"only {fmt_count(count)} values: too few for a trustworthy {stat} (below its "
            "floor); it is little more than the largest value")


def _percentile_cell(dist: Distribution | None, stat: str) -> str:
    """A percentile, greyed with a title saying why when `stat` is in `dist.too_few`."""
    value = None if dist is None else getattr(dist, stat)
    if dist is not None and stat in dist.too_few:
        return (f"<td class='num too-few' title='{esc(too_few_title(stat, dist.count))}'>"
                f"{fmt_ms(value)}</td>")
    return _num(fmt_ms(value))


def _probe_cell(probe: ProbeSummary | None) -> str:
    """/health p99, with the censored (timed-out) and missed-tick counts under it."""
    if probe is None:
        return _num(MISSING)
    dist = probe.latency_ms
    cell = _percentile_cell(dist, "p99")
    notes = []
    if probe.censored:
        notes.append(f"{probe.censored:,} censored at {fmt_ms(probe.timeout_ms)}")
    if probe.missed_ticks:
        notes.append(f"{probe.missed_ticks:,} missed")
    if not notes:
        return cell
    return cell[:-5] + f"<br><span class='err'>{esc(' · '.join(notes))}</span></td>"


def _errors_cell(p: PointSummary) -> str:
    counts = error_counts(p)
    if not counts:
        return "0"
    codes = p.http_errors
    parts = []
    for status, n in counts.items():
        text = f"{status} {n:,}"
        shown = [f"{code}×{times:g}" for code, times in codes.items() if times]
        if status == "http_error" and shown:
            text += " (" + ", ".join(shown) + ")"
        parts.append(f"<span class='err'>{esc(text)}</span>")
    return "<br>".join(parts)


def _goodput_cell(goodput: Goodput | None) -> str:
    if goodput is None:
        return _num(MISSING)
    slo = esc(json.dumps(goodput.slo, sort_keys=True))
    text = fmt_rate(goodput.req_s)
    if goodput.fraction is not None:
        text += f" · {fmt_fraction(goodput.fraction)}"
    return f"<td class='num' title='SLO {slo}'>{text}</td>"


def _num(text: str) -> str:
    return f"<td class='num'>{text}</td>"


def _flags(p: PointSummary) -> list[str]:
    return [f for f in p.flags if f]


def _badges(p: PointSummary) -> str:
    return " ".join(f"<span class='badge'>⚠ {esc(f)}</span>" for f in _flags(p))


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
