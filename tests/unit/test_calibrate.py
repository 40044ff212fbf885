"""`patternbench calibrate`: figures per driver from a run's points, storage, the report table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.records.typed_json import RecordError
from harness.report.calibration import calibration_section
from harness.report.run_data import RunData, empty_summary
from harness.run.calibrate import CalibrateOptions, calibration_scenario, figures, table
from harness.run.calibration import (
    Calibration,
    DriverFloor,
    LoadAverage,
    read_calibration,
    stored_calibration,
)
from harness.summary.record import Distribution, Load, PointSummary, Requests, Throughput
from harness.telemetry.summary import summarize_telemetry
from tests.manifests import MACHINE, manifest
from tests.summaries import typed_point


def dist(p50: float, p99: float) -> Distribution:
    return Distribution(count=100, mean=p50, p50=p50, p90=p99, p95=p99, p99=p99, max=p99)


def point(driver: str, ttft: Distribution | None, ttfb: Distribution) -> PointSummary:
    """A calibration point: 90 of 100 requests ok at 812.345 req/s, the driver at half a core."""
    host = [{"kind": "host", "t": 1.0, "driver_cpu_pct": 50.0, "target_procs": 1}]
    return typed_point(f"echo@{driver}", "c64", Load(kind="closed", concurrency=64),
                       driver=driver, telemetry=summarize_telemetry(host, start=0.0, end=2.0),
                       ttft_ms=ttft, ttfb_ms=ttfb, dispatch_lag_ms=dist(0.2, 0.5),
                       requests=Requests(ok=90, http_error=0, refused=0, timeout=10,
                                         truncated=0, conn_error=0, total=100),
                       throughput=Throughput(window_s=6.0, req_s=812.345, output_tok_s=None,
                                             input_tok_s=None))


def calibration(drivers: dict[str, DriverFloor]) -> Calibration:
    """What `calibrate` stores for `drivers`' figures."""
    return Calibration(created="2026-11-27T10:00:00+00:00", run="r1", target="echo",
                       concurrency=64, tokens_per_request=16, duration_s=6.0,
                       load_avg_1m=LoadAverage(before=0.52, after=1.37),
                       cpu_affinity={"target": (0,), "driver": (1,)}, machine=MACHINE,
                       versions={"python": "3.11.7", "k6": None}, drivers=drivers)


def test_figures_take_ttft_or_first_byte_for_a_driver_without_token_timing() -> None:
    got = figures([point("builtin", dist(3.0, 9.876), dist(1.0, 2.0)),
                   point("k6", None, dist(2.5, 7.0))])
    # half a core for 812.345 req/s: 0.6155 ms of driver CPU per request, 1624.7 req/s a core
    assert got["builtin"] == DriverFloor(
        max_req_s=812.35, ttft_p99_ms=9.88, ttft_p50_ms=3.0, driver_cpu_ms_per_req=0.616,
        req_s_per_core=1624.69, target_cpu_ms_per_req=None, timing="token", ok=90, errors=10,
        dispatch_lag_p99_ms=0.5)
    assert (got["k6"].timing, got["k6"].ttft_p99_ms) == ("first_byte", 7.0)
    assert "812.4" in table(calibration(got))


def test_calibration_is_read_back_or_none(tmp_path: Path) -> None:
    assert stored_calibration(tmp_path) is None
    (tmp_path / "calibration.json").write_text("{broken", encoding="utf-8")
    assert stored_calibration(tmp_path) is None
    stored = calibration(figures([point("k6", None, dist(2.5, 7.0))]))
    (tmp_path / "calibration.json").write_text(json.dumps(stored.to_json()), encoding="utf-8")
    assert stored_calibration(tmp_path) == stored


def test_a_calibration_written_before_the_record_was_typed_reads_as_schema_1(
        tmp_path: Path) -> None:
    """The shape `calibrate` wrote before this record: no schema_version, same keys."""
    data = calibration(figures([point("builtin", dist(3.0, 9.876), dist(1.0, 2.0))])).to_json()
    del data["schema_version"]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    read = read_calibration(path)
    assert read.schema_version == 1 and read.drivers["builtin"].max_req_s == 812.35
    assert read.cpu_affinity == {"target": (0,), "driver": (1,)}


def test_a_calibration_that_does_not_fit_names_the_field(tmp_path: Path) -> None:
    data = calibration(figures([point("k6", None, dist(2.5, 7.0))])).to_json()
    path = tmp_path / "calibration.json"
    for change, where in ((("timing", "bytes"), "drivers.k6.timing: expected one of"),
                          (("rps", 1.0), "drivers.k6: unknown field(s) ['rps']")):
        key, value = change
        bad = data | {"drivers": {"k6": data["drivers"]["k6"] | {key: value}}}
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(RecordError, match=f"calibration.json does not fit schema 1: "
                                               f"{re.escape(where)}"):
            read_calibration(path)
    path.write_text(json.dumps(data | {"schema_version": 2}), encoding="utf-8")
    with pytest.raises(RecordError, match="newer version of patternbench"):
        read_calibration(path)


def test_the_calibration_run_is_one_closed_point_per_driver_on_echo() -> None:
    sc = calibration_scenario(CalibrateOptions(drivers=("builtin", "k6"), concurrency=32,
                                               tokens=8, pin=False))
    assert sc.drivers == ("builtin", "k6") and sc.cpu_affinity == {}
    assert [(t.name, t.label) for t in sc.targets] == [("echo", "echo")]
    (p,) = sc.points
    assert (p.kind, p.concurrency, sc.workload.output_tokens) == ("closed", 32, 8)
    assert sc.client.probe_interval_s == 0


def test_the_report_shows_the_calibration_as_a_table() -> None:
    cal = calibration(figures([point("k6", None, dist(2.5, 7.25))]))
    html = calibration_section(RunData("r", manifest(calibration=cal), empty_summary("r")))
    assert "Harness overhead" in html and "<td>k6</td><td>812.4</td>" in html
    assert "no token timing" in html and "machine load average 0.52 → 1.37" in html
    assert calibration_section(RunData("r", manifest(), empty_summary("r"))) == ""
    assert calibration_section(RunData("r", None, empty_summary("r"))) == ""
