"""summary.json as typed records: built from real metrics, written, read back, validated.

The samples are shaped as the builtin driver writes them (streamed tokens with arrival times, a
503 marked `refused` with no `done_at`), the telemetry records as the collector writes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.metrics.requests import summarize
from harness.records.docs import main as record_docs
from harness.records.typed_json import RecordError, decode, encode
from harness.samples import Sample
from harness.summary.record import (
    SCHEMA_VERSION,
    Distribution,
    Load,
    PointSummary,
    ProbeSummary,
    RunSummary,
    SummaryError,
    TargetRun,
    read_summary,
)
from harness.telemetry.summary import summarize_telemetry

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "summary.schema.json"


def streamed(i: int, sent: float) -> Sample:
    tokens = tuple(sent + 0.05 + 0.01 * k for k in range(8))
    return Sample(request_id=f"r{i}", target="fastapi_batching", point="c4", scheduled_at=sent,
                  sent_at=sent, status="ok", first_byte_at=sent + 0.04,
                  first_token_at=tokens[0], token_times=tokens, done_at=tokens[-1] + 0.001,
                  prompt_tokens=128, output_tokens=8, tokens_source="usage", http_status=200)


def refused(i: int, sent: float) -> Sample:
    return Sample(request_id=f"x{i}", target="fastapi_batching", point="c4", scheduled_at=sent,
                  sent_at=sent, status="refused", http_status=503,
                  error="HTTP 503: server is at capacity")


def run_summary() -> RunSummary:
    samples = [streamed(i, 1.0 + 0.1 * i) for i in range(20)] + [refused(0, 2.5)]
    metrics = summarize(samples, warmup_end=1.0, slo={"ttft_ms": 100.0})
    host = [{"kind": "host", "t": t, "target_cpu_pct": 95.0, "target_rss_mb": 640.0,
             "target_procs": 1, "driver_cpu_pct": 12.0, "driver_rss_mb": 80.0}
            for t in (1.5, 2.0, 2.5)]
    status = {"kind": "gpu_status", "t": 1.0, "available": False,
              "reason": "NVML could not start: NVMLError_LibraryNotFound", "devices": []}
    point = PointSummary.of(
        metrics, target="fastapi_batching", target_name="fastapi_batching", driver="builtin",
        point="c4", load=Load(kind="closed", concurrency=4), stream=True, flags=(),
        max_dispatch_lag_ms=50.0, driver_stats={"dropped_iterations": 0},
        probe=ProbeSummary(latency_ms=Distribution.of([1.2, 1.5, 10000.0]), sent=3,
                           answered=2, censored=1, missed_ticks=4, timeout_ms=10000.0),
        telemetry=summarize_telemetry([status, *host], start=1.0, end=3.0, output_tokens=160))
    targets = {"fastapi_batching": TargetRun(name="fastapi_batching",
                                             options={"max_batch": 64}, status="ok",
                                             startup_s=3.1),
               "vllm": TargetRun(name="vllm", options={}, status="failed",
                                 error="run `make vllm` first")}
    return RunSummary(schema_version=SCHEMA_VERSION, run="20261201-100000-default-abc1234",
                      scenario="default", interrupted=False, targets=targets, points=(point,))


def written(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    return path


def test_a_summary_reads_back_as_the_same_record(tmp_path: Path) -> None:
    summary = run_summary()
    back = read_summary(written(tmp_path, summary.to_json()))
    assert back == RunSummary.from_json(json.loads(json.dumps(summary.to_json())))
    point = back.points[0]
    assert point.requests.refused == 1 and point.requests.ok == 20
    assert point.ttft_ms is not None and point.ttft_ms.p50 == pytest.approx(50.0)
    assert point.telemetry is not None and point.telemetry.target.rss_peak_mb == 640.0
    assert back.targets["vllm"].status == "failed"
    assert back.to_json() == summary.to_json()  # nothing lost on the way


def test_a_written_summary_fits_the_committed_json_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(run_summary().to_json(), schema)
    bad = run_summary().to_json()
    bad["points"][0]["requests"]["ok"] = -1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_committed_schemas_and_field_list_are_generated_from_the_types() -> None:
    """summary.json's, manifest.json's and calibration.json's (tests/unit/test_manifest.py
    shows the check catches each of them stale)."""
    assert record_docs(["--check"]) == 0, "run: python -m harness.records.docs"


@pytest.mark.parametrize(("version", "says"), [
    (1, "written by an older version of patternbench (schema 1; this one reads"),
    (SCHEMA_VERSION + 1, "written by a newer version of patternbench"),
    (None, "has no schema_version"),
])
def test_another_version_is_one_clear_line_not_a_key_error(tmp_path: Path, version: Any,
                                                           says: str) -> None:
    data = {"points": [{"target": "flask_threads", "requests": {"ok": 3}}]}
    if version is not None:
        data["schema_version"] = version
    with pytest.raises(SummaryError, match=r"^summary\.json") as err:
        read_summary(written(tmp_path, data))
    assert says in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("change", "says"), [
    (lambda d: d["points"][0]["requests"].pop("ok"), "points[0].requests.ok: missing"),
    (lambda d: d["points"][0].update(latency=1), "points[0]: unknown field(s) ['latency']"),
    (lambda d: d["points"][0]["ttft_ms"].update(p50="fast"),
     "points[0].ttft_ms.p50: expected float, got 'fast'"),
    (lambda d: d["targets"]["vllm"].update(status="gone"),
     "targets.vllm.status: expected one of ['ok', 'failed'], got 'gone'"),
    (lambda d: d["points"][0]["requests"].update(ok=True), "requests.ok: expected int, got True"),
])
def test_a_summary_that_does_not_fit_names_the_field(tmp_path: Path, change: Any,
                                                     says: str) -> None:
    data = run_summary().to_json()
    change(data)
    with pytest.raises(SummaryError, match="does not fit schema") as err:
        read_summary(written(tmp_path, data))
    assert says in str(err.value)


def test_unreadable_and_missing_files_are_summary_errors(tmp_path: Path) -> None:
    with pytest.raises(SummaryError, match="is missing"):
        read_summary(tmp_path / "summary.json")
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(SummaryError, match="could not be read"):
        read_summary(tmp_path / "summary.json")


def test_floats_are_rounded_and_non_finite_values_become_null() -> None:
    assert encode(Distribution(1, 1 / 3, 0.5, 0.5, 0.5, 0.5, float("inf"))) == {
        "count": 1, "mean": 0.3333, "p50": 0.5, "p90": 0.5, "p95": 0.5, "p99": 0.5,
        "max": None, "ci95": {}, "too_few": [], "effective_count": None}
    with pytest.raises(RecordError, match="max: expected float, got None"):
        decode(Distribution, {"count": 1, "mean": 1, "p50": 1, "p90": 1, "p95": 1, "p99": 1,
                              "max": None})
