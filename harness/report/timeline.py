"""A target's telemetry timeline as one PNG: stacked panels against the run clock.

Panels, each drawn only when its data exists: GPU utilization % (per GPU) with board power on a
second axis; CPU % of the target's process tree and of the driver's (100 = one core); the
server's in-flight / queue depth / batch size from `/metrics`; `/health` latency, failed probes
marked at the panel's top. Every load point is a shaded span labelled with its name, its warm-up
hatched, so the reader sees what each point did to the machine.

Reads the records of `telemetry/<target>.jsonl` (shapes in `harness.telemetry`); unknown or
malformed records are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.report.charts import Chart, _png, _text
from harness.report.run_data import JSONDict, as_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SPAN_COLORS = ("#dbe9f6", "#fde7d3")
SERVER_SERIES = (("in_flight", "in flight", "#1f77b4"), ("queue_depth", "queue depth", "#d62728"),
                 ("batch_size", "batch size", "#2ca02c"))


@dataclass(frozen=True)
class Span:
    name: str
    start: float
    end: float
    warmup_end: float | None


def spans(records: Sequence[JSONDict]) -> list[Span]:
    out = []
    for r in records:
        start, end = as_float(r.get("start")), as_float(r.get("end"))
        if r.get("kind") == "point" and start is not None and end is not None and end > start:
            out.append(Span(str(r.get("point") or "?"), start, end, as_float(r.get("warmup_end"))))
    return sorted(out, key=lambda s: s.start)


def series(records: Sequence[JSONDict], kind: str, field: str,
           where: Callable[[JSONDict], bool] = lambda r: True) -> tuple[list[float], list[float]]:
    """(times, values) of `field` in records of `kind`, sorted by time, nulls left out; a NaN
    value between two load points, so a line is not drawn across the idle gap."""
    rows = sorted((t, v, str(r.get("point"))) for r in records
                  if r.get("kind") == kind and where(r)
                  and (t := as_float(r.get("t"))) is not None
                  and (v := as_float(r.get(field))) is not None)
    ts: list[float] = []
    vs: list[float] = []
    for i, (t, v, point) in enumerate(rows):
        if i and point != rows[i - 1][2]:
            ts.append(rows[i - 1][0])
            vs.append(math.nan)
        ts.append(t)
        vs.append(v)
    return ts, vs


def gpu_note(records: Sequence[JSONDict]) -> str:
    """Why no GPU panel is drawn (empty when one is)."""
    statuses = [r for r in records if r.get("kind") == "gpu_status"]
    if any(r.get("available") for r in statuses):
        return ""
    reasons = sorted({str(r.get("reason")) for r in statuses if r.get("reason")})
    return "No GPU: " + ("; ".join(reasons) if reasons else "no GPU status was recorded") + "."


def timeline_chart(target: str, records: Sequence[JSONDict]) -> Chart:
    """The timeline of one target; `data_uri` None when its records hold nothing to plot."""
    title = f"{target}: telemetry over time"
    panels: list[Callable[[Axes], None]] = []
    gpus = sorted({int(g) for r in records if r.get("kind") == "gpu"
                   and (g := as_float(r.get("gpu"))) is not None})
    if gpus:
        panels.append(lambda ax: _gpu_panel(ax, records, gpus))
    if series(records, "host", "target_cpu_pct")[0] or series(records, "host",
                                                               "driver_cpu_pct")[0]:
        panels.append(lambda ax: _cpu_panel(ax, records))
    if any(series(records, "metrics", f)[0] for f, _, _ in SERVER_SERIES):
        panels.append(lambda ax: _server_panel(ax, records))
    if any(r.get("kind") == "health" for r in records):
        panels.append(lambda ax: _health_panel(ax, records))
    note = gpu_note(records)
    if not panels:
        return Chart(title, None, "No telemetry samples to plot. " + note, "telemetry", target)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 1.2 + 1.7 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    point_spans = spans(records)
    for i, (ax, draw) in enumerate(zip(axes, panels, strict=True)):
        _shade(ax, point_spans, label=i == 0)
        draw(ax)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
    axes[-1].set_xlabel("run clock (s)")
    fig.suptitle(_text(title), fontsize=11)
    caption = ("Shaded: load points (hatched: warm-up). CPU % counts 100 per busy core. "
               "Server gauges come from /metrics, about once a second. " + note)
    return Chart(title, _png(fig), caption.strip(), "telemetry", target,
                 alt=_alt(title, records, point_spans))


def _alt(title: str, records: Sequence[JSONDict], point_spans: Sequence[Span]) -> str:
    """The timeline in words: each point's span and its mean target CPU %, where sampled."""
    parts = []
    for span in point_spans:
        cpu = [v for r in records if r.get("kind") == "host"
               and (t := as_float(r.get("t"))) is not None and span.start <= t <= span.end
               and (v := as_float(r.get("target_cpu_pct"))) is not None]
        mean = f", target CPU {sum(cpu) / len(cpu):.0f}% on average" if cpu else ""
        parts.append(f"{span.name} {span.start:.1f}–{span.end:.1f} s{mean}")
    return f"{title}: " + ("; ".join(parts) if parts else "no load point recorded") + "."


def _shade(ax: Axes, point_spans: Sequence[Span], *, label: bool) -> None:
    for i, span in enumerate(point_spans):
        color = SPAN_COLORS[i % len(SPAN_COLORS)]
        ax.axvspan(span.start, span.end, color=color, alpha=0.8, linewidth=0, zorder=0)
        if span.warmup_end is not None and span.start < span.warmup_end < span.end:
            ax.axvspan(span.start, span.warmup_end, facecolor="none", edgecolor="#9aa9b8",
                       hatch="//", linewidth=0, zorder=0)
        if label:
            ax.text((span.start + span.end) / 2, 1.01, _text(span.name), ha="center",
                    va="bottom", fontsize=7, transform=ax.get_xaxis_transform())


def _gpu_panel(ax: Axes, records: Sequence[JSONDict], gpus: list[int]) -> None:
    for gpu in gpus:
        ts, vs = series(records, "gpu", "util_pct", _on_gpu(gpu))
        ax.plot(ts, vs, linewidth=1.2, label=f"GPU {gpu} util %")
    ax.set_ylim(0, 105)
    ax.set_ylabel("GPU util %")
    ts, vs = series(records, "gpu", "power_w")
    if ts:
        twin = ax.twinx()
        twin.plot(ts, vs, color="#7f7f7f", linewidth=0.8, linestyle=":", label="power W (all)")
        twin.set_ylabel("power (W)", fontsize=8)
        twin.set_ylim(bottom=0)
        twin.legend(loc="upper right", fontsize=7, frameon=False)


def _on_gpu(gpu: int) -> Callable[[JSONDict], bool]:
    return lambda r: as_float(r.get("gpu")) == gpu


def _cpu_panel(ax: Axes, records: Sequence[JSONDict]) -> None:
    for field, label, style in (("target_cpu_pct", "target CPU %", "-"),
                                ("driver_cpu_pct", "driver CPU %", "--")):
        ts, vs = series(records, "host", field)
        if ts:
            ax.plot(ts, vs, style, linewidth=1.2, label=label)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("CPU %")


def _server_panel(ax: Axes, records: Sequence[JSONDict]) -> None:
    for field, label, color in SERVER_SERIES:
        ts, vs = series(records, "metrics", field)
        if ts:
            ax.step(ts, vs, where="post", color=color, linewidth=1.2, label=label)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("requests")


def _health_panel(ax: Axes, records: Sequence[JSONDict]) -> None:
    ts, vs = series(records, "health", "latency_ms")
    if ts:
        ax.plot(ts, vs, ".", color="#9467bd", markersize=4, label="/health latency ms")
    failed = [t for r in records if r.get("kind") == "health"
              and as_float(r.get("latency_ms")) is None and (t := as_float(r.get("t"))) is not None]
    if failed:
        ax.plot(failed, [1.0] * len(failed), "x", color="#d62728", markersize=6,
                transform=ax.get_xaxis_transform(), clip_on=False, label="no answer")
    finite = [v for v in vs if math.isfinite(v)]
    if finite and max(finite) / max(min(finite), 1e-3) > 20:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("/health ms")
