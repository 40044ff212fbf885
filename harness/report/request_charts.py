"""Charts of single requests at one load, from the samples files: CDFs, a Gantt, latency over time.

The load shown is the highest level every target ran (closed loop first), so the targets are
compared at the same load; `samples/<target>/<point>.jsonl` holds one `Sample` per request.
Every request of the point is drawn (warm-up included: the Gantt shows how the queue fills).

- TTFT and E2E CDFs (`ttft_cdf`, `e2e_cdf`): the share of requests at or under each latency.
- A Gantt per target (`gantt`, detail = target): one bar per request, waiting in the client
  (scheduled → sent), waiting for the first token (sent → first token: queueing and prefill),
  streaming (first token → done); failures in red.
- Latency over time (`latency_over_time`): each request's E2E against when it was sent.
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from harness.report.charts import Chart, _figure, _png, _text, _wide, target_styles
from harness.report.run_data import RunData, load_kind, load_label, load_level
from harness.run.folder import RunDir
from harness.samples import iter_samples

MAX_GANTT_REQUESTS = 80  # bars per Gantt; more would be thinner than a pixel
GANTT_COLORS = {"client": "#bbbbbb", "first_token": "#ff7f0e", "stream": "#1f77b4",
                "failed": "#d62728"}


def chosen_load(run: RunData) -> tuple[str, dict[str, str]]:
    """(label of the load, target → point name) at the highest level every target ran."""
    points = [p for p in run.points if load_level(p) is not None and p.repeat == 0]
    kinds = sorted({load_kind(p) for p in points})
    points = [p for p in points if kinds and load_kind(p) == kinds[0]]
    targets = {p.target for p in points}
    levels = sorted({x for p in points if (x := load_level(p)) is not None}, reverse=True)
    for level in levels:
        chosen = {p.target: p for p in points if load_level(p) == level}
        if set(chosen) == targets or level == levels[-1]:
            label = load_label(next(iter(chosen.values())), with_kind=False)
            return label, {t: p.point for t, p in chosen.items()}
    return "", {}


def samples_frame(run: RunData, target: str, point: str) -> pd.DataFrame:
    """One row per request of one point, with ttft_ms and e2e_ms from `sent_at`."""
    if run.folder is None:
        return pd.DataFrame()
    path = RunDir(run.folder).samples(target, point)
    if not path.is_file():
        return pd.DataFrame()
    rows = [asdict(s) for s in iter_samples(path)]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).drop(columns=["token_times", "extra"])
    # a point whose requests all failed has only None in a time column (dtype object): as
    # numbers (NaN), so its arithmetic and describe() work as for any other point
    times = [c for c in frame.columns if c.endswith("_at")]
    frame[times] = frame[times].apply(pd.to_numeric)
    frame["target"] = target
    frame["ttft_ms"] = (frame["first_token_at"] - frame["sent_at"]) * 1000
    frame["e2e_ms"] = (frame["done_at"] - frame["sent_at"]) * 1000
    return frame.sort_values("sent_at", ignore_index=True)


def at_load_charts(run: RunData) -> tuple[str, list[Chart]]:
    """The load shown, and its charts (empty when no samples are stored)."""
    label, chosen = chosen_load(run)
    frames = [f for t, p in chosen.items() if not (f := samples_frame(run, t, p)).empty]
    if not frames:
        return label, []
    samples = pd.concat(frames, ignore_index=True)
    styles = target_styles(list(run.targets))
    charts = [_cdf(samples, "ttft_ms", "TTFT", label, styles),
              _cdf(samples, "e2e_ms", "E2E latency", label, styles),
              _over_time(samples, label, styles)]
    charts += [_gantt(rows, str(t), label) for t, rows in samples.groupby("target", sort=False)]
    return label, charts


def _cdf(samples: pd.DataFrame, column: str, name: str, label: str,
         styles: dict[str, tuple[str, str]]) -> Chart:
    title = f"{name} CDF at {label}"
    kind = "ttft_cdf" if column == "ttft_ms" else "e2e_cdf"
    ok = samples[(samples["status"] == "ok")].dropna(subset=[column])
    if ok.empty:
        return Chart(title, None, f"No completed request with a {name} at {label}.", kind)
    fig, ax = _figure()
    for target, rows in ok.groupby("target", sort=False):
        values = rows[column].sort_values().to_numpy()
        shares = [(i + 1) / len(values) for i in range(len(values))]
        ax.step(values, shares, where="post", color=styles.get(str(target), ("#333", "o"))[0],
                label=_text(target), linewidth=1.6)
    if _wide(list(ok[column])):
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{name} (ms, from sent)")
    ax.set_ylabel("share of requests at or under")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=min(ok["target"].nunique(), 4), frameon=False,
               fontsize=8)
    stats = ok.groupby("target", sort=False)[column].describe(percentiles=[0.5, 0.9])
    table = stats.rename(columns={"count": "requests"}).to_html(
        border=0, classes="data", float_format=lambda v: f"{v:,.1f}")
    alt = f"{title}: " + "; ".join(
        f"{t} p50 {row['50%']:.0f} ms, p90 {row['90%']:.0f} ms ({row['count']:.0f} requests)"
        for t, row in stats.iterrows()) + "."
    note = (f"Every completed request at {label}, warm-up included. A curve further left is "
            "faster; a long "
            "flat tail to the right is the few requests that waited behind others. Where "
            "curves cross, one target is faster for most requests and slower for the tail.")
    return Chart(title, _png(fig), note, kind, alt=alt, table=table)


def _over_time(samples: pd.DataFrame, label: str,
               styles: dict[str, tuple[str, str]]) -> Chart:
    title = f"E2E latency over time at {label}"
    ok = samples[samples["status"] == "ok"].dropna(subset=["e2e_ms"])
    if ok.empty:
        return Chart(title, None, f"No completed request at {label}.", "latency_over_time")
    fig, ax = _figure()
    for target, rows in ok.groupby("target", sort=False):
        start = samples.loc[samples["target"] == target, "scheduled_at"].min()
        ax.plot(rows["sent_at"] - start, rows["e2e_ms"], ".-", linewidth=0.8,
                color=styles.get(str(target), ("#333", "o"))[0], label=_text(target))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("request sent (s since the point started)")
    ax.set_ylabel("E2E latency (ms)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=min(ok["target"].nunique(), 4), frameon=False,
               fontsize=8)
    trend = ok.groupby("target", sort=False)["e2e_ms"].agg(["first", "last", "max", "count"])
    alt = f"{title}: " + "; ".join(
        f"{t} first {row['first']:.0f} ms, last {row['last']:.0f} ms, max {row['max']:.0f} ms"
        for t, row in trend.iterrows()) + "."
    table = trend.rename(columns={"first": "first E2E ms", "last": "last E2E ms",
                                  "max": "max E2E ms", "count": "requests"}).to_html(
        border=0, classes="data", float_format=lambda v: f"{v:,.1f}")
    note = ("One dot per completed request, at the time it was sent. A line that climbs "
            "means a queue growing during the point (the load is above what the target "
            "sustains); a flat band means a steady state.")
    return Chart(title, _png(fig), note, "latency_over_time", alt=alt, table=table)


def _gantt(rows: pd.DataFrame, target: str, label: str) -> Chart:
    title = f"{target}: requests over time at {label}"
    shown = rows.head(MAX_GANTT_REQUESTS)
    start = _first(shown["scheduled_at"].min())
    fig, ax = _figure()
    for y, req in enumerate(shown.itertuples(index=False)):
        sent = _first(req.sent_at) - start
        ax.hlines(y, _first(req.scheduled_at) - start, sent, color=GANTT_COLORS["client"], lw=3)
        if req.status not in ("ok", "abandoned"):  # abandoned: streamed until its client left
            end = _first(req.failed_at, req.done_at, req.sent_at) - start
            ax.hlines(y, sent, end, color=GANTT_COLORS["failed"], lw=3)
            continue
        first = _first(req.first_token_at, req.done_at) - start
        ax.hlines(y, sent, first, color=GANTT_COLORS["first_token"], lw=3)
        ax.hlines(y, first, _first(req.done_at, req.failed_at, req.first_token_at) - start,
                  color=GANTT_COLORS["stream"], lw=3)
    for key, text in (("client", "waiting in the client"), ("first_token", "waiting for the "
                      "first token"), ("stream", "streaming"), ("failed", "failed")):
        ax.plot([], [], color=GANTT_COLORS[key], lw=3, label=text)
    from matplotlib.ticker import MaxNLocator

    ax.invert_yaxis()
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # request numbers, never 0.5
    ax.set_xlabel("s since the point started")
    ax.set_ylabel("request (in order sent)")
    ax.set_title(_text(title), fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    waits = (shown["first_token_at"] - shown["sent_at"]).dropna() * 1000
    alt = (f"{title}: {len(shown)} of {len(rows)} requests; waiting for the first token "
           f"{waits.median():.0f} ms median, {waits.max():.0f} ms at most." if len(waits)
           else f"{title}: {len(shown)} of {len(rows)} requests, none got a first token.")
    note = ("One bar per request (the first " + f"{len(shown)} of {len(rows)}). Long orange "
            "bars are requests queued before the server started them; many blue bars that "
            "start together are a batch; bars that start only when another ends are served "
            "one at a time.")
    times = pd.DataFrame({"request": shown["request_id"], "status": shown["status"],
                          **{f"{name} (s)": shown[column] - start for name, column in (
                              ("scheduled", "scheduled_at"), ("sent", "sent_at"),
                              ("first token", "first_token_at"), ("done", "done_at"))}})
    table = times.to_html(index=False, border=0, classes="data", na_rep="—",
                          float_format=lambda v: f"{v:,.3f}")
    return Chart(title, _png(fig), note, "gantt", target, alt=alt, table=table)


def _first(*values: object) -> float:
    """The first value that is a number (a sample's times can be None)."""
    for value in values:
        if isinstance(value, (int, float)) and value == value:
            return float(value)
    return 0.0

