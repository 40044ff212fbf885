"""Pure: telemetry records of one load point → the `telemetry` object of its summary.json entry.

Only records sampled inside the measured window `[start, end]` count (the same window as the
point's throughput: from the end of warm-up to the end of the load), except that energy is
integrated over exactly that window from the power samples around it. The result is a
`harness.summary.PointTelemetry`; as JSON (every distribution a `Distribution`, null when there
was no sample):

    {"window_s": 8.02,
     "gpu": {"available": true, "devices": 1, "names": ["NVIDIA H100 80GB HBM3"],
             "samples": 80, "util_pct": {dist}, "mem_used_peak_mb": 5120.0, "power_w": {dist},
             "sm_clock_mhz": {dist}, "energy_j": 2500.1, "energy_j_counter": 2498.0,
             "tokens_per_j": 3.4},
     "target": {"samples": 16, "cpu_pct": {dist}, "rss_peak_mb": 1400.2, "pss_peak_mb": 1210.0,
                "procs_max": 3},
     "driver": {"samples": 16, "cpu_pct": {dist}, "rss_peak_mb": 96.3, "procs_max": 1},
     "health": {"count": 8, "failed": 0, "latency_ms": {dist}},
     "server": {"source": "patternbench", "scrapes": 8, "failed": 0, "in_flight_max": 32,
                "queue_depth_max": 0, "batch_size_max": 32, "batch_size_mean": 30.9,
                "kv_cache_pct_max": null, "prefix_cache_hit_pct": 75.0}}

Where NVML is absent: `"gpu": {"available": false, "reason": "..."}` and nothing else.
- `energy_j`: board power integrated over the window (piecewise linear between samples, the
  nearest sample held at the edges), summed over GPUs; null when power was not readable.
  `energy_j_counter`: the same from NVML's energy counter, where the GPU has one.
- `tokens_per_j`: output tokens that arrived inside the window (`output_tokens`, the same count
  as the point's `throughput.output_tok_s` × `window_s`) / `energy_j` (equivalently output
  tokens/s ÷ mean power).
- `mem_used_peak_mb`: the highest memory in use seen, per GPU, summed over GPUs.
- CPU % is 100 per busy core.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from harness.summary.record import (
    Distribution,
    GpuTelemetry,
    HealthTelemetry,
    PointTelemetry,
    ProcessTree,
    ServerTelemetry,
)
from harness.telemetry.store import Record


def summarize_telemetry(records: Sequence[Record], *, start: float, end: float,
                        output_tokens: float | None = None) -> PointTelemetry:
    """The `telemetry` part of one point from its records (see the module docstring)."""
    inside = [r for r in records if _in(r.get("t"), start, end)]
    return PointTelemetry(
        window_s=end - start if end > start else None,
        gpu=gpu_summary(records, start, end, output_tokens),
        target=_tree(inside, "target"),
        driver=_tree(inside, "driver"),
        health=_health(inside),
        server=_server(inside),
    )


def gpu_summary(records: Sequence[Record], start: float, end: float,
                output_tokens: float | None) -> GpuTelemetry:
    status = next((r for r in records if r.get("kind") == "gpu_status"), None)
    if status is None:
        return GpuTelemetry(available=False, reason="no GPU status was recorded")
    if not status.get("available"):
        return GpuTelemetry(available=False, reason=str(status.get("reason") or "unknown"))
    devices = [d for d in status.get("devices") or () if isinstance(d, dict)]
    by_gpu: dict[int, list[Record]] = {}
    for r in records:
        if r.get("kind") == "gpu" and _num(r.get("t")) is not None:
            by_gpu.setdefault(int(r.get("gpu") or 0), []).append(r)
    inside = [r for rs in by_gpu.values() for r in rs if _in(r.get("t"), start, end)]
    energy = _sum_or_none(integrate(*_series(rs, "power_w"), start, end)
                          for rs in by_gpu.values())
    counter = _sum_or_none(_counter_delta(*_series(rs, "energy_counter_j"), start, end)
                           for rs in by_gpu.values())
    peaks = [max(v) for rs in by_gpu.values()
             if (v := [x for r in rs if _in(r.get("t"), start, end)
                       and (x := _num(r.get("mem_used_mb"))) is not None])]
    return GpuTelemetry(
        available=True,
        devices=len(devices) or len(by_gpu),
        names=tuple(str(d.get("name")) for d in devices),
        samples=len(inside),
        util_pct=_dist(inside, "util_pct"),
        mem_used_peak_mb=round(sum(peaks), 1) if peaks else None,
        power_w=_dist(inside, "power_w"),
        sm_clock_mhz=_dist(inside, "sm_clock_mhz"),
        energy_j=_round(energy),
        energy_j_counter=_round(counter),
        tokens_per_j=(_round(output_tokens / energy, 4)
                      if energy and energy > 0 and output_tokens is not None else None),
    )


def integrate(ts: Sequence[float], vs: Sequence[float], a: float, b: float) -> float | None:
    """∫ from a to b of the piecewise-linear curve through (ts, vs), sorted by t, held constant
    before the first and after the last point. None without any point or when b <= a."""
    if not ts or b <= a:
        return None
    knots = [a, *(t for t in ts if a < t < b), b]
    values = [interpolate(ts, vs, t) for t in knots]
    return sum((knots[i + 1] - knots[i]) * (values[i] + values[i + 1]) / 2
               for i in range(len(knots) - 1))


def interpolate(ts: Sequence[float], vs: Sequence[float], t: float) -> float:
    """The piecewise-linear curve through (ts, vs) at t, constant beyond the ends."""
    i = bisect.bisect_left(ts, t)
    if i == 0:
        return vs[0]
    if i >= len(ts):
        return vs[-1]
    t0, t1 = ts[i - 1], ts[i]
    if t1 == t0:
        return vs[i]
    return vs[i - 1] + (vs[i] - vs[i - 1]) * (t - t0) / (t1 - t0)


def _counter_delta(ts: Sequence[float], vs: Sequence[float], a: float,
                   b: float) -> float | None:
    """Increase of a cumulative counter over [a, b]; None unless samples lie on both sides."""
    if len(ts) < 2 or ts[0] > a or ts[-1] < b:
        return None
    return interpolate(ts, vs, b) - interpolate(ts, vs, a)


def _series(records: Iterable[Record], field: str) -> tuple[list[float], list[float]]:
    pairs = sorted((t, v) for r in records
                   if (t := _num(r.get("t"))) is not None and (v := _num(r.get(field))) is not None)
    return [t for t, _ in pairs], [v for _, v in pairs]


def _tree(records: Sequence[Record], prefix: str) -> ProcessTree:
    host = [r for r in records if r.get("kind") == "host"]
    procs = [n for r in host if (n := _num(r.get(f"{prefix}_procs"))) is not None]
    return ProcessTree(
        samples=len(host),
        cpu_pct=_dist(host, f"{prefix}_cpu_pct"),
        rss_peak_mb=_max(host, f"{prefix}_rss_mb"),
        pss_peak_mb=_max(host, f"{prefix}_pss_mb"),
        procs_max=int(max(procs)) if procs else None,
    )


def _health(records: Sequence[Record]) -> HealthTelemetry:
    """A probe that timed out counts at its timeout (`waited_ms`: censored), not dropped."""
    probes = [r for r in records if r.get("kind") == "health"]
    censored = [w for r in probes if _num(r.get("latency_ms")) is None
                and (w := _num(r.get("waited_ms"))) is not None]  # only timeouts have it
    answered = [v for r in probes if (v := _num(r.get("latency_ms"))) is not None]
    return HealthTelemetry(
        count=len(probes),
        failed=len(probes) - len(answered),
        latency_ms=Distribution.of([*answered, *censored]),
        censored=len(censored),
    )


def _server(records: Sequence[Record]) -> ServerTelemetry:
    scrapes = [r for r in records if r.get("kind") == "metrics"]
    sources = sorted({str(r["source"]) for r in scrapes if r.get("source")})
    batch = [v for r in scrapes if (v := _num(r.get("batch_size"))) is not None]
    return ServerTelemetry(
        source=", ".join(sources) or None,
        scrapes=len(scrapes),
        failed=sum(1 for r in scrapes if r.get("error")),
        in_flight_max=_max(scrapes, "in_flight"),
        queue_depth_max=_max(scrapes, "queue_depth"),
        batch_size_max=max(batch) if batch else None,
        batch_size_mean=round(sum(batch) / len(batch), 3) if batch else None,
        kv_cache_pct_max=_max(scrapes, "kv_cache_pct"),
        prefix_cache_hit_pct=_hit_pct(scrapes),
    )


def _hit_pct(scrapes: Sequence[Record]) -> float | None:
    """Prefix-cache hits / queries over the window, from the first and last scrape that report
    both cumulative counters; None when nothing was looked up in between."""
    both = [(q, h) for r in scrapes if (q := _num(r.get("prefix_cache_queries"))) is not None
            and (h := _num(r.get("prefix_cache_hits"))) is not None]
    if len(both) < 2 or both[-1][0] <= both[0][0]:
        return None
    return round(100 * (both[-1][1] - both[0][1]) / (both[-1][0] - both[0][0]), 3)


def _dist(records: Iterable[Record], field: str) -> Distribution | None:
    return Distribution.of(v for r in records if (v := _num(r.get(field))) is not None)


def _max(records: Iterable[Record], field: str) -> float | None:
    values = [v for r in records if (v := _num(r.get(field))) is not None]
    return max(values) if values else None


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    """The sum, or None when there is no value or any value is None (a partial total would
    understate)."""
    items = list(values)
    if not items or any(v is None for v in items):
        return None
    return sum(v for v in items if v is not None)


def _in(t: object, start: float, end: float) -> bool:
    value = _num(t)
    return value is not None and start <= value <= end


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
