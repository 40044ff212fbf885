"""A target's main results table: one row per load point × repeat, its numbers from the frame.

The values come from the pandas table layer (`harness.report.frame.frame_of`): the rows are the
target's, ordered by load level (a point without one last) then repeat with `sort_values`; each
column is a frame column (`ttft_ms.p99`, `throughput.req_s`, `probe.censored`...) chosen by the
column spec `COLUMNS`, and a value the frame lacks (NaN, or a column no point has) renders as
"—", never 0. Only each cell's HTML (greyed too-few percentiles with their reason, the goodput
SLO tooltip, error breakdowns, flag badges) is written here.

    >>> html = points_table(points, targets=["flask_threads"])  # one target's points
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from harness.report.formatting import (
    MISSING,
    esc,
    fmt_count,
    fmt_fraction,
    fmt_ms,
    fmt_number,
    fmt_rate,
    fmt_tok_s,
)
from harness.report.frame import frame_of
from harness.report.run_data import ERROR_STATUSES, load_label
from harness.summary.record import PointSummary
from harness.verdict.anchors import point_anchor

Row = dict[str, Any]  # one frame row: column → value, None where the frame has NaN
Cell = Callable[[str, Row], str]  # (the spec's frame column, the row) → the cell's HTML

HEAD = (
    "<thead><tr><th rowspan='2'>load</th><th colspan='3'>requests</th>"
    "<th colspan='2'>TTFT ms</th><th colspan='2'>TPOT ms</th><th colspan='2'>ITL ms</th>"
    "<th colspan='3'>E2E ms</th><th colspan='2'>throughput</th>"
    "<th rowspan='2'>goodput<br>req/s</th>"
    "<th rowspan='2' title='output tokens per ok request (from usage): median / p90 / longest; "
    "with ignore_eos off the model decides them'>output tokens<br>p50 / p90 / max</th>"
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


def too_few_title(stat: str, count: object) -> str:
    """The tooltip of a percentile drawn from too few values."""
    return (f"only {fmt_count(count)} values: too few for a trustworthy {stat} (below its "
            "floor); it is little more than the largest value")


def points_table(points: list[PointSummary], targets: list[str]) -> str:
    """The table of one target's `points`; `targets` (the run's labels in report order) gives
    the row ids: `point_anchor(...)` on each point's first row (its first repeat)."""
    rows = []
    for row in table_rows(points):
        anchor = point_anchor(targets, row["target"], row["point"]) if row["first"] else None
        attrs = (f" id='{anchor}'" if anchor else "") + (" class='flagged'"
                                                         if _flags(row["flags"]) else "")
        cells = "".join(cell(column, row) for column, cell in COLUMNS)
        rows.append(f"<tr{attrs}>{cells}</tr>")
    return (f"<div class='scroll'><table class='points'>{HEAD}<tbody>" + "".join(rows)
            + "</tbody></table></div>")


def table_rows(points: list[PointSummary]) -> list[Row]:
    """The frame's rows of `points` in table order (load level, a point without one last, then
    repeat), holding the columns the table shows: numbers as float, NaN (or a column no point
    has) as None; `first` marks a point's first row, `codes` / `slo` hold the row's HTTP error
    codes and SLO limits, `label` the load's label."""
    frame = frame_of(points, "").assign(label=[load_label(p, with_kind=False) for p in points])
    frame = frame.sort_values(["level", "repeat"], na_position="last", kind="stable")
    numbers = frame.reindex(columns=NUMBERS).apply(pd.to_numeric, errors="coerce")
    counted = (numbers["requests.total"].fillna(0) + numbers["dropped"].fillna(0)) > 0
    for rate in RATES:  # 0 where requests were counted but none completed (all failed)
        numbers[rate] = numbers[rate].mask(numbers[rate].isna() & counted, 0.0)
    table = pd.concat([numbers.astype("float64"),
                       frame.reindex(columns=[*TEXTS, *(f"{d}.too_few" for d in DISTS)]),
                       (~frame["point"].duplicated()).rename("first")],
                      axis=1)
    rows: list[Row] = table.astype(object).where(table.notna(), None).to_dict("records")
    codes = _sub_records(frame, "http_errors.")
    slos = _sub_records(frame, "goodput.slo.")
    for row, code, slo in zip(rows, codes, slos, strict=True):
        row.update(codes=code, slo=slo)
    return rows


def _sub_records(frame: pd.DataFrame, prefix: str) -> list[dict[str, float]]:
    """Per row, the `prefix*` columns' values by the rest of their name, NaN left out."""
    part = frame.filter(regex="^" + prefix.replace(".", r"\.")).astype("float64")
    part.columns = [c.removeprefix(prefix) for c in part.columns]
    return [{str(k): v for k, v in record.items() if pd.notna(v)}
            for record in part.to_dict("records")]


def _label(_: str, row: Row) -> str:
    repeat = int(row["repeat"] or 0)
    return f"<th scope='row'>{esc(row['label'] + (f' · repeat {repeat}' if repeat else ''))}</th>"


def _number(fmt: Callable[[object], str]) -> Cell:
    """A plain numeric cell, — where the frame has none."""
    return lambda column, row: _num(fmt(row[column]))


def _percentile(column: str, row: Row) -> str:
    """A percentile, greyed with a title saying why when it is among its distribution's
    `too_few`."""
    dist, stat = column.rsplit(".", 1)
    marks = row[f"{dist}.too_few"]
    if isinstance(marks, (list, tuple)) and stat in marks:
        title = esc(too_few_title(stat, row[f"{dist}.count"]))
        return f"<td class='num too-few' title='{title}'>{fmt_ms(row[column])}</td>"
    return _num(fmt_ms(row[column]))


def _probe(column: str, row: Row) -> str:
    """/health p99, with the censored (timed-out) and missed-tick counts under it."""
    if row["probe.sent"] is None:
        return _num(MISSING)
    cell = _percentile(column, row)
    censored, missed = int(row["probe.censored"] or 0), int(row["probe.missed_ticks"] or 0)
    notes = ([f"{censored:,} censored at {fmt_ms(row['probe.timeout_ms'])}"] if censored else []
             ) + ([f"{missed:,} missed"] if missed else [])
    if not notes:
        return cell
    note = f"<br><span class='err'>{esc(' · '.join(notes))}</span></td>"
    return cell.removesuffix("</td>") + note


def _errors(_: str, row: Row) -> str:
    """Failed requests by status (and dropped arrivals), http_error with its status codes."""
    shown = [f"{code}×{times:g}" for code, times in row["codes"].items() if times]
    parts = []
    for status in (*ERROR_STATUSES, "dropped"):
        n = row["dropped" if status == "dropped" else f"requests.{status}"]
        if not n:
            continue
        text = f"{status} {int(n):,}"
        if status == "http_error" and shown:
            text += " (" + ", ".join(shown) + ")"
        parts.append(f"<span class='err'>{esc(text)}</span>")
    return f"<td class='errs'>{'<br>'.join(parts) or '0'}</td>"


def _goodput(column: str, row: Row) -> str:
    """Goodput req/s · fraction, the SLO as its title; — where the scenario set no SLO."""
    if row["goodput.good_requests"] is None:
        return _num(MISSING)
    text = fmt_rate(row[column])
    if row["goodput.fraction"] is not None:
        text += f" · {fmt_fraction(row['goodput.fraction'])}"
    slo = esc(json.dumps(row["slo"], sort_keys=True))
    return f"<td class='num' title='SLO {slo}'>{text}</td>"


def _lengths(column: str, row: Row) -> str:
    """The answers' lengths: 'p50 / p90 / max' output tokens, — without any."""
    values = [row[f"{column}.{stat}"] for stat in ("p50", "p90", "max")]
    if any(v is None for v in values):
        return _num(MISSING)
    return _num(" / ".join(f"{v:,.0f}" for v in values))


def _badges(column: str, row: Row) -> str:
    return f"<td>{badges(_flags(row[column]))}</td>"


def badges(flags: list[str]) -> str:
    """Each flag as a warning badge."""
    return " ".join(f"<span class='badge'>⚠ {esc(f)}</span>" for f in flags)


def _flags(flags: object) -> list[str]:
    return [str(f) for f in flags if f] if isinstance(flags, (list, tuple)) else []


def _num(text: str) -> str:
    return f"<td class='num'>{text}</td>"


DISTS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "e2e_sched_ms", "dispatch_lag_ms",
         "probe.latency_ms")
RATES = ("throughput.req_s", "throughput.output_tok_s")
NUMBERS = ("repeat", "requests.ok", *(f"requests.{s}" for s in ERROR_STATUSES),
           "requests.total", "dropped", *(f"{d}.{s}" for d in DISTS for s in ("count", "p50",
                                                                               "p99")),
           *RATES, "goodput.req_s", "goodput.fraction", "goodput.good_requests",
           "achieved_concurrency", "probe.sent", "probe.censored", "probe.missed_ticks",
           "probe.timeout_ms", "output_tokens.p50", "output_tokens.p90", "output_tokens.max")
TEXTS = ("target", "point", "label", "flags")
COLUMNS: tuple[tuple[str, Cell], ...] = (  # (frame column, its cell), in HEAD's order
    ("label", _label),
    ("requests.ok", _number(fmt_count)),
    ("errors", _errors),
    ("dropped", _number(fmt_count)),
    *((f"{dist}.{stat}", _percentile)
      for dist in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms") for stat in ("p50", "p99")),
    ("e2e_sched_ms.p99", _percentile),
    ("throughput.req_s", _number(fmt_rate)),
    ("throughput.output_tok_s", _number(fmt_tok_s)),
    ("goodput.req_s", _goodput),
    ("output_tokens", _lengths),
    ("achieved_concurrency", _number(fmt_number)),
    ("dispatch_lag_ms.p99", _percentile),
    ("probe.latency_ms.p99", _probe),
    ("flags", _badges),
)
