"""`patternbench calibrate`: figures per driver from a run's points, storage, the report table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.calibrate import (
    CalibrateOptions,
    calibration_scenario,
    figures,
    read_calibration,
    table,
)
from harness.report.calibration import calibration_section
from harness.report.run_data import RunData


def point(driver: str, ttft: dict[str, Any] | None, ttfb: dict[str, Any]) -> dict[str, Any]:
    return {"driver": driver, "ttft_ms": ttft, "ttfb_ms": ttfb,
            "throughput": {"req_s": 812.345}, "requests": {"ok": 90, "total": 100},
            "dispatch_lag_ms": {"p99": 0.5},
            "telemetry": {"driver": {"cpu_pct": {"mean": 50.0}}, "target": {"cpu_pct": None}}}


def test_figures_take_ttft_or_first_byte_for_a_driver_without_token_timing() -> None:
    got = figures([point("builtin", {"p50": 3.0, "p99": 9.876}, {"p50": 1.0, "p99": 2.0}),
                   point("k6", None, {"p50": 2.5, "p99": 7.0})])
    # half a core for 812.345 req/s: 0.6155 ms of driver CPU per request, 1624.7 req/s a core
    assert got["builtin"] == {"max_req_s": 812.35, "ttft_p99_ms": 9.88, "ttft_p50_ms": 3.0,
                              "driver_cpu_ms_per_req": 0.616, "req_s_per_core": 1624.69,
                              "target_cpu_ms_per_req": None, "timing": "token", "ok": 90,
                              "errors": 10, "dispatch_lag_p99_ms": 0.5}
    assert (got["k6"]["timing"], got["k6"]["ttft_p99_ms"]) == ("first_byte", 7.0)
    assert "812.4" in table({"concurrency": 64, "tokens_per_request": 16, "drivers": got})


def test_calibration_is_read_back_or_none(tmp_path: Path) -> None:
    assert read_calibration(tmp_path) is None
    (tmp_path / "calibration.json").write_text("{broken", encoding="utf-8")
    assert read_calibration(tmp_path) is None
    (tmp_path / "calibration.json").write_text(json.dumps({"drivers": {}}), encoding="utf-8")
    assert read_calibration(tmp_path) == {"drivers": {}}


def test_the_calibration_run_is_one_closed_point_per_driver_on_echo() -> None:
    sc = calibration_scenario(CalibrateOptions(drivers=("builtin", "k6"), concurrency=32,
                                               tokens=8, pin=False))
    assert sc.drivers == ("builtin", "k6") and sc.cpu_affinity == {}
    assert [(t.name, t.label) for t in sc.targets] == [("echo", "echo")]
    (p,) = sc.points
    assert (p.kind, p.concurrency, sc.workload.output_tokens) == ("closed", 32, 8)
    assert sc.client.probe_interval_s == 0


def test_the_report_shows_the_calibration_as_a_table() -> None:
    cal = {"created": "2026-11-27", "run": "r1", "concurrency": 64, "tokens_per_request": 16,
           "drivers": figures([point("k6", None, {"p50": 2.5, "p99": 7.25})])}
    html = calibration_section(RunData("r", {"calibration": cal}, {}))
    assert "Harness overhead" in html and "<td>k6</td><td>812.4</td>" in html
    assert "no token timing" in html
    assert calibration_section(RunData("r", {}, {})) == ""
