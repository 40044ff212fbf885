"""The gate's outputs: gate.json round-trips, JUnit XML parses, the benchmark JSON has the
github-action-benchmark custom shape, the table and Markdown show every result."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.gate.check import GateResult
from harness.gate.outputs import (
    BENCH_BIGGER,
    BENCH_SMALLER,
    GATE_JSON,
    GATE_JUNIT,
    GATE_MD,
    GateReport,
    benchmark_entries,
    read_report,
    table,
    write_outputs,
)

RESULTS = (
    GateResult("fastapi_batching.c16.ttft_ms.p50", "fastapi_batching.c16.ttft_ms.p50",
               "absolute", "< 1500", "pass", 212.5, (201.0, 230.25), basis="quantile"),
    GateResult("*.c16.throughput.output_tok_s", "flask_threads.c16.throughput.output_tok_s",
               "relative", ">= -10%", "fail", 61.5, (55.0, 68.75), baseline=80.0,
               change_pct=-23.125, change_ci_pct=(-31.5, -13.75), basis="count",
               higher_is_better=True),
    GateResult("a / b", "fastapi_batching.c16.throughput.output_tok_s / "
               "flask_threads.c16.throughput.output_tok_s", "ratio", ">= 2", "inconclusive",
               2.25, (1.75, 2.875), basis="count", higher_is_better=True),
    GateResult("*.c16.ttft_ms.p99", "flask_threads.c16.ttft_ms.p99", "absolute", "< 1500",
               "cannot_judge", 950.0, reason="too_few: ttft_ms.p99 at flask_threads.c16 "
               "rests on 120 values, under the 662 it needs"),
    GateResult("*.c16.tpot_ms.p50", "flask_threads.c16.tpot_ms.p50", "relative", "<= +10%",
               "skipped", 40.5, reason="baseline from another machine kind: x (this run: y)"),
)
REPORT = GateReport(run="20261201-120000-ci-abc1234", baseline="results/baselines/ci/x.json",
                    machine_kind="y", exit_code=1, results=RESULTS)


def test_gate_json_round_trips(tmp_path: Path) -> None:
    paths = write_outputs(tmp_path, REPORT)
    assert [p.name for p in paths] == [GATE_JSON, GATE_MD, GATE_JUNIT, BENCH_SMALLER,
                                       BENCH_BIGGER]
    assert read_report(tmp_path / GATE_JSON) == REPORT


def test_junit_xml_parses_with_one_case_per_result(tmp_path: Path) -> None:
    write_outputs(tmp_path, REPORT)
    suite = ET.parse(tmp_path / GATE_JUNIT).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("5", "1", "2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.subject for r in RESULTS]
    assert [[child.tag for child in c] for c in cases] == [
        [], ["failure"], ["error"], ["error"], ["skipped"]]
    failure = cases[1].find("failure")
    assert failure is not None and "-23.1% vs 80" in (failure.get("message") or "")


def test_benchmark_json_splits_by_direction(tmp_path: Path) -> None:
    write_outputs(tmp_path, REPORT)
    smaller = json.loads((tmp_path / BENCH_SMALLER).read_text())
    bigger = json.loads((tmp_path / BENCH_BIGGER).read_text())
    assert [e["name"] for e in smaller] == [RESULTS[0].subject, RESULTS[3].subject,
                                            RESULTS[4].subject]
    assert smaller[0] == {"name": RESULTS[0].subject, "unit": "ms", "value": 212.5,
                          "range": "± 14.62", "extra": "gate < 1500: pass"}
    assert [(e["name"], e["unit"]) for e in bigger] == [
        (RESULTS[1].subject, "tok/s"), (RESULTS[2].subject, "ratio")]
    assert all(set(e) <= {"name", "unit", "value", "range", "extra"} for e in smaller + bigger)
    assert benchmark_entries(REPORT, bigger=True)[0]["value"] == 61.5


def test_table_and_markdown_show_value_ci_threshold_and_verdict(tmp_path: Path) -> None:
    lines = table(REPORT).splitlines()
    assert lines[0].split() == ["gate", "value", "CI", "95%", "threshold", "verdict"]
    assert "61.5 (-23.1% vs 80)" in lines[2] and "[-31.5%, -13.8%]" in lines[2]
    assert lines[2].split()[-1] == "fail"
    assert lines[4].endswith("rests on 120 values, under the 662 it needs")
    write_outputs(tmp_path, REPORT)
    md = (tmp_path / GATE_MD).read_text()
    assert md.startswith("## patternbench gate: regression\n")
    assert md.count("\n| `") == len(RESULTS) and "❌ FAIL" in md
