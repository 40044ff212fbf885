"""The report's telemetry section from stored records: GPU panel, per-point table, no-GPU note."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report.build import build_report
from harness.report.run_data import load_run
from harness.report.timeline import series, spans, timeline_chart
from harness.summary.record import Load
from harness.telemetry.store import Record, write_records
from harness.telemetry.summary import summarize_telemetry
from tests.manifests import manifest, scenario, write_manifest
from tests.summaries import typed_point, write_summary


def records(gpu: bool) -> list[Record]:
    out: list[Record] = [
        {"kind": "point", "t": 0.0, "point": "c1", "start": 0.0, "warmup_end": 1.0, "end": 4.0},
        {"kind": "point", "t": 5.0, "point": "c8", "start": 5.0, "warmup_end": 6.0, "end": 9.0},
    ]
    for point, start in (("c1", 0.0), ("c8", 5.0)):
        status: Record = ({"available": True, "reason": None, "devices": [{"index": 0}]} if gpu
                          else {"available": False, "reason": "NVML could not start: X",
                                "devices": []})
        out.append({"kind": "gpu_status", "t": start, "point": point, **status})
        for i in range(8):
            t = start + 0.5 * i
            busy = 40.0 if point == "c1" else 95.0
            if gpu:
                out.append({"kind": "gpu", "t": t, "point": point, "gpu": 0, "util_pct": busy,
                            "mem_used_mb": 4000.0 + i, "power_w": 100.0 + busy,
                            "sm_clock_mhz": 1980.0, "energy_counter_j": None})
            out.append({"kind": "host", "t": t, "point": point, "target_cpu_pct": 100.0 + i,
                        "target_rss_mb": 900.0, "target_procs": 1, "driver_cpu_pct": 20.0,
                        "driver_rss_mb": 80.0, "driver_procs": 1})
            out.append({"kind": "metrics", "t": t, "point": point, "source": "patternbench",
                        "in_flight": 8.0 if point == "c8" else 1.0, "queue_depth": 0.0,
                        "batch_size": 8.0 if point == "c8" else 1.0, "kv_cache_pct": None,
                        "error": None})
            out.append({"kind": "health", "t": t, "point": point,
                        "latency_ms": None if i == 7 else 2.0 + i, "error": None})
    return sorted(out, key=lambda r: r["t"])


def make_run(root: Path, gpu: bool) -> Path:
    run_dir = root / "20261127-190000-tel-abc1234"
    recs = records(gpu)
    points = []
    for name, level, start in (("c1", 1, 0.0), ("c8", 8, 5.0)):
        mine = [r for r in recs if r["point"] == name]
        points.append(typed_point(
            "fastapi_batching", name, Load(kind="closed", concurrency=level),
            telemetry=summarize_telemetry(mine, start=start + 1.0, end=start + 4.0,
                                          output_tokens=600)))
    run_dir.mkdir(parents=True)
    write_summary(run_dir, points)
    write_manifest(run_dir, manifest(scenario(name="tel"), run=run_dir.name))
    write_records(run_dir / "telemetry" / "fastapi_batching.jsonl", recs)
    return run_dir


def row(page: str, label: str) -> list[str]:
    section = page[page.index("id='telemetry'"):]
    match = re.search(r"<tr><th scope='row'>" + re.escape(label) + r"</th>(.*?)</tr>", section)
    assert match, label
    return re.findall(r"<td class='num'>(.*?)</td>", match.group(1))


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_gpu_run_shows_gpu_columns_and_a_gpu_panel(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "results", gpu=True)
    page = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    c8 = row(page, "c=8")
    assert c8[0] == "95" and c8[1] == "95"  # GPU util mean, max
    assert c8[3] == "585"  # energy: 195 W × 3 s
    assert c8[4] == "1.026"  # 600 tokens / 585 J
    assert c8[5] == "104.5" and c8[7] == "900"  # target CPU mean, RSS peak
    assert "(1 failed)" in c8[10]  # the /health p99 cell notes the probe without an answer
    assert c8[-1] == "8"  # batch size max
    assert "No GPU telemetry" not in page
    chart = timeline_chart("fastapi_batching", load_run(run_dir).telemetry["fastapi_batching"])
    assert chart.data_uri is not None and "No GPU" not in chart.note


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_run_without_gpu_says_why_and_still_draws_the_rest(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "results", gpu=False)
    page = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    assert "No GPU telemetry: NVML could not start: X." in page
    c1 = row(page, "c=1")
    assert c1[:5] == ["—"] * 5 and c1[5] == "104.5"
    chart = timeline_chart("t", records(gpu=False))
    assert chart.data_uri is not None and chart.note.endswith("No GPU: NVML could not start: X.")
    assert chart.alt == ("t: telemetry over time: c1 0.0–4.0 s, target CPU 104% on average; "
                         "c8 5.0–9.0 s, target CPU 104% on average.")


def test_series_breaks_lines_between_points_and_spans_keep_warmup() -> None:
    ts, vs = series(records(gpu=False), "host", "driver_cpu_pct")
    assert len(ts) == 17 and vs[8] != vs[8]  # one NaN between the two points' samples
    assert [(s.name, s.start, s.warmup_end, s.end) for s in spans(records(gpu=False))] == [
        ("c1", 0.0, 1.0, 4.0), ("c8", 5.0, 6.0, 9.0)]
    assert timeline_chart("t", []).data_uri is None
