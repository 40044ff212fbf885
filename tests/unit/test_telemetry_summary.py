"""The pure telemetry summary, from hand-built records: energy, tokens per joule, windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.records.typed_json import encode
from harness.samples import Clock, Sample
from harness.telemetry.recorder import TelemetryRecorder
from harness.telemetry.store import Record
from harness.telemetry.summary import integrate, summarize_telemetry

H100 = {"kind": "gpu_status", "t": 0.0, "available": True, "reason": None,
        "devices": [{"index": 0, "name": "GPU-A", "mem_total_mb": 81559.0}]}


def telemetry_json(*args: Any, **kwargs: Any) -> Any:
    """The telemetry part of a point as summary.json carries it."""
    return encode(summarize_telemetry(*args, **kwargs))


def gpu(t: float, power: float | None, util: float = 50.0, index: int = 0,
        mem: float = 1000.0, counter: float | None = None) -> Record:
    return {"kind": "gpu", "t": t, "gpu": index, "util_pct": util, "mem_util_pct": 10.0,
            "mem_used_mb": mem, "power_w": power, "sm_clock_mhz": 1980.0,
            "energy_counter_j": counter}


def test_energy_integrates_a_power_ramp_and_gives_tokens_per_joule() -> None:
    # power = 100 + 10·t W sampled every second; ∫ from 0.5 to 4.5 = 400 + 5·(4.5² − 0.5²) = 500
    records = [H100] + [gpu(float(t), 100.0 + 10 * t) for t in range(7)]
    out = telemetry_json(records, start=0.5, end=4.5, output_tokens=1250)["gpu"]
    assert out["energy_j"] == pytest.approx(500.0)
    assert out["tokens_per_j"] == pytest.approx(2.5)
    assert out["power_w"]["count"] == 4  # samples at t = 1, 2, 3, 4 lie inside the window
    assert out["power_w"]["max"] == 140.0


def test_energy_holds_the_edge_samples_and_sums_gpus_and_checks_the_counter() -> None:
    two = dict(H100, devices=[{"index": 0}, {"index": 1}])
    records: list[Record] = [two]
    for t in (1.0, 2.0, 3.0):
        records.append(gpu(t, 100.0, index=0, counter=1000.0 + 100.0 * t, mem=500.0 * t))
        records.append(gpu(t, 300.0, index=1, util=0.0, counter=50.0 + 300.0 * t, mem=200.0))
    out = telemetry_json(records, start=0.0, end=4.0, output_tokens=None)["gpu"]
    # held constant before t=1 and after t=3: (100 + 300) W × 4 s
    assert out["energy_j"] == pytest.approx(1600.0)
    assert out["tokens_per_j"] is None  # no token count given
    assert out["energy_j_counter"] is None  # the counter does not cover the window's edges
    inner = telemetry_json(records, start=1.5, end=2.5, output_tokens=40)["gpu"]
    assert inner["energy_j_counter"] == pytest.approx(400.0)
    assert inner["energy_j"] == pytest.approx(400.0)
    assert inner["tokens_per_j"] == pytest.approx(0.1)
    assert out["devices"] == 2 and out["samples"] == 6
    assert out["util_pct"]["max"] == 50.0 and out["util_pct"]["mean"] == 25.0
    assert out["mem_used_peak_mb"] == 1500.0 + 200.0  # per-GPU peaks, summed


def test_energy_is_null_when_any_gpu_has_no_power_reading() -> None:
    records = [H100, gpu(1.0, 100.0), gpu(2.0, 100.0), gpu(1.0, None, index=1),
               gpu(2.0, None, index=1)]
    out = telemetry_json(records, start=1.0, end=2.0, output_tokens=100)["gpu"]
    assert out["energy_j"] is None and out["tokens_per_j"] is None
    assert out["util_pct"]["count"] == 4


def test_no_gpu_is_recorded_as_unavailable_with_its_reason() -> None:
    status = {"kind": "gpu_status", "t": 0.0, "available": False,
              "reason": "NVML could not start: NVMLError_LibraryNotFound", "devices": []}
    out = telemetry_json([status], start=0.0, end=5.0, output_tokens=100)
    gpu = out["gpu"]
    assert (gpu["available"], gpu["reason"]) == (
        False, "NVML could not start: NVMLError_LibraryNotFound")
    measured = {k: v for k, v in gpu.items() if k not in ("available", "reason")}
    assert all(v in (None, 0, []) for v in measured.values()), "nothing is invented"
    assert telemetry_json([], start=0.0, end=5.0)["gpu"]["available"] is False


def test_host_health_and_server_are_summarized_over_the_window_only() -> None:
    records: list[Record] = [
        {"kind": "host", "t": 0.5, "target_cpu_pct": 999.0, "target_rss_mb": 9999.0,
         "driver_cpu_pct": 999.0, "driver_rss_mb": 1.0, "target_procs": 9},  # warm-up: out
        {"kind": "host", "t": 1.0, "target_cpu_pct": None, "target_rss_mb": 100.0,
         "target_pss_mb": 80.0, "target_procs": 2, "driver_cpu_pct": None, "driver_rss_mb": 50.0},
        {"kind": "host", "t": 1.5, "target_cpu_pct": 150.0, "target_rss_mb": 300.0,
         "target_pss_mb": 250.0, "target_procs": 3, "driver_cpu_pct": 20.0, "driver_rss_mb": 60.0},
        {"kind": "host", "t": 2.0, "target_cpu_pct": 50.0, "target_rss_mb": 200.0,
         "target_pss_mb": 150.0, "target_procs": 3, "driver_cpu_pct": 40.0, "driver_rss_mb": 55.0},
        {"kind": "health", "t": 1.1, "latency_ms": 2.0, "status": 200, "error": None},
        {"kind": "health", "t": 2.1, "latency_ms": None, "status": None, "error": "timeout"},
        {"kind": "health", "t": 2.9, "latency_ms": 10.0, "status": 200, "error": None},
        {"kind": "metrics", "t": 1.2, "source": "vllm", "in_flight": 12.0, "queue_depth": 4.0,
         "batch_size": 8.0, "kv_cache_pct": 35.0, "error": None},
        {"kind": "metrics", "t": 2.2, "source": "vllm", "in_flight": 6.0, "queue_depth": 0.0,
         "batch_size": 6.0, "kv_cache_pct": 20.0, "error": None},
        {"kind": "metrics", "t": 2.5, "source": None, "in_flight": None, "queue_depth": None,
         "batch_size": None, "kv_cache_pct": None, "error": "HTTP 500"},
    ]
    out = telemetry_json(records, start=1.0, end=3.0)
    assert out["window_s"] == 2.0
    target, driver = out["target"], out["driver"]
    assert target["cpu_pct"]["count"] == 2 and target["cpu_pct"]["mean"] == 100.0
    assert target["cpu_pct"]["max"] == 150.0
    assert (target["rss_peak_mb"], target["pss_peak_mb"], target["procs_max"]) == (300, 250, 3)
    assert driver["cpu_pct"]["mean"] == 30.0 and driver["rss_peak_mb"] == 60.0
    health = out["health"]
    assert (health["count"], health["failed"]) == (3, 1)
    assert health["latency_ms"]["p50"] == 6.0 and health["latency_ms"]["max"] == 10.0
    server = out["server"]
    assert server["source"] == "vllm" and (server["scrapes"], server["failed"]) == (3, 1)
    assert (server["in_flight_max"], server["queue_depth_max"], server["batch_size_max"]) == (
        12.0, 4.0, 8.0)
    assert server["batch_size_mean"] == 7.0 and server["kv_cache_pct_max"] == 35.0
    assert out["gpu"]["available"] is False


def test_prefix_cache_hit_rate_is_the_windows_share_of_hits_in_queries() -> None:
    def scrape(t: float, queries: float, hits: float) -> Record:
        return {"kind": "metrics", "t": t, "source": "vllm", "batch_size": 8.0,
                "prefix_cache_queries": queries, "prefix_cache_hits": hits, "error": None}

    # counters since the server started: before the window 1000 tokens (none hit) were looked
    # up; inside it 4096 more, of which 3072 were served from the cache
    records = [scrape(0.5, 1000, 0), scrape(1.0, 1000, 0), scrape(2.0, 3048, 1536),
               scrape(3.0, 5096, 3072)]
    assert telemetry_json(records, start=1.0, end=3.0)["server"]["prefix_cache_hit_pct"] == 75.0
    idle = [scrape(1.0, 1000, 0), scrape(2.0, 1000, 0)]
    assert telemetry_json(idle, start=1.0, end=3.0)["server"]["prefix_cache_hit_pct"] is None


def test_empty_window_gives_nulls_not_zeros() -> None:
    out = telemetry_json([{"kind": "host", "t": 9.0, "target_cpu_pct": 5.0}],
                              start=0.0, end=1.0)
    assert out["target"]["cpu_pct"] is None and out["target"]["rss_peak_mb"] is None
    assert out["health"]["latency_ms"] is None and out["server"]["batch_size_max"] is None


def test_integrate_edges() -> None:
    assert integrate([], [], 0.0, 1.0) is None
    assert integrate([1.0], [5.0], 2.0, 2.0) is None
    assert integrate([1.0], [5.0], 0.0, 2.0) == pytest.approx(10.0)
    assert integrate([0.0, 2.0], [0.0, 4.0], 1.0, 2.0) == pytest.approx(3.0)


def test_recorder_tokens_per_joule_takes_the_window_tokens_not_warmup_ones(
        tmp_path: Path) -> None:
    # 100 W flat; the window is 2 → 8 s: 600 J. One request streamed 8 single-token chunks at
    # 1..8 s (2 of them in warm-up) and another finished at 1.5 s, all in warm-up.
    rec = TelemetryRecorder(Clock(), folder=tmp_path, label="t", point="p", url=None,
                            target_pids=[])
    rec.records = [H100, *(gpu(float(t), 100.0) for t in range(11))]
    rec.end = 10.0  # the recorder stopped once the driver had drained
    inside = Sample(request_id="a", target="t", point="p", scheduled_at=0.5, sent_at=0.5,
                    status="ok", first_token_at=1.0,
                    token_times=tuple(float(t) for t in range(1, 9)), done_at=8.0,
                    output_tokens=8, tokens_source="usage")
    warm = Sample(request_id="w", target="t", point="p", scheduled_at=0.0, sent_at=0.0,
                  status="ok", first_token_at=0.5, token_times=(0.5, 1.5), done_at=1.5,
                  output_tokens=2, tokens_source="usage")
    out = encode(rec.summary([inside, warm], warmup_end=2.0, load_end=8.0))
    assert out["window_s"] == 6.0
    assert out["gpu"]["energy_j"] == pytest.approx(600.0)
    assert out["gpu"]["tokens_per_j"] == pytest.approx(7 / 600, abs=1e-4)  # chunks at 2..8
