"""A short real run (sim model, real target process, real driver) writes telemetry files and a
`telemetry` object per point in summary.json, and the report draws the timeline."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness.report.build import build_report
from harness.run.runner import RunOptions, run_scenario
from harness.scenario.load import parse_scenario
from harness.telemetry.store import read_records

SCENARIO = {
    "name": "telemetry",
    "model": "sim:ttft_ms=10,tpot_ms=4,gil=release",
    "seed": 3,
    "timeout_s": 60,
    "workload": {"prompt_tokens": 16, "output_tokens": 24, "stream": True},
    "load": {"kind": "closed", "concurrency": [1, 4], "duration_s": 2.5, "warmup_s": 1.0},
    "targets": [{"name": "fastapi_threadpool"}],
}


@pytest.mark.slow
def test_short_run_stores_telemetry_and_summarizes_each_point(tmp_path: Path) -> None:
    run_dir = run_scenario(parse_scenario(SCENARIO), RunOptions(
        results_root=tmp_path / "results", reports_root=tmp_path / "reports", out=io.StringIO()))
    records = read_records(run_dir / "telemetry" / "fastapi_threadpool.jsonl")
    assert not list((run_dir / "telemetry").glob(".*"))  # partial files were merged away
    kinds = {r["kind"] for r in records}
    assert {"gpu_status", "host", "health", "metrics", "point"} <= kinds
    assert "error" not in kinds
    spans = [r for r in records if r["kind"] == "point"]
    assert [s["point"] for s in spans] == ["c1", "c4"]  # both points, in one file, in order
    times = [r["t"] for r in records]
    assert times == sorted(times)
    first, second = spans
    assert first["end"] <= second["start"]
    assert all(first["start"] <= r["t"] <= first["end"] for r in records if r["point"] == "c1")

    summary = json.loads((run_dir / "summary.json").read_text())
    points = {p["point"]: p for p in summary["points"]}
    for name, point in points.items():
        tel = point["telemetry"]
        assert tel["window_s"] > 1.0, name
        assert tel["gpu"]["available"] is False and tel["gpu"]["reason"]  # no GPU here
        assert tel["target"]["procs_max"] >= 1 and tel["target"]["rss_peak_mb"] > 50
        assert tel["target"]["cpu_pct"]["count"] >= 1
        assert tel["driver"]["cpu_pct"]["count"] >= 1
        assert tel["health"]["count"] >= 1 and tel["health"]["failed"] == 0
        assert tel["server"]["source"] == "patternbench" and tel["server"]["failed"] == 0
    # four closed-loop streams keep requests in flight whenever /metrics is scraped
    assert points["c4"]["telemetry"]["server"]["in_flight_max"] >= 1

    page = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    section = page[page.index("id='telemetry'"):]
    assert "fastapi_threadpool: telemetry over time" in section
    assert "data:image/png;base64," in section
    assert "No GPU telemetry: NVML" in section or "No GPU: " in section
