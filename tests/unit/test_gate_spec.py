"""The gate grammar: every kind parses into a frozen Gate, a malformed one is a one-line
ScenarioError naming it, at scenario load."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.gate.spec import Gate, MetricPath, parse_gate, parse_gates
from harness.scenario.decode import ScenarioError
from harness.scenario.load import load_scenario

RATIO = ("fastapi_batching.c32.throughput.output_tok_s / "
         "flask_threads.c32.throughput.output_tok_s")


def test_absolute_gate() -> None:
    assert parse_gate("fastapi_batching.c32.ttft_ms.p99", "< 1500") == Gate(
        name="fastapi_batching.c32.ttft_ms.p99", expr="< 1500", kind="absolute", op="<",
        bound=1500.0, left=MetricPath("fastapi_batching", "c32", "ttft_ms", "p99"))


def test_relative_gates_read_signed_percentages() -> None:
    down = parse_gate("*.c32.throughput.output_tok_s", ">= -10%")
    up = parse_gate("*.*.tpot_ms.p50", "<= +10%")
    assert (down.kind, down.op, down.bound, down.limit) == ("relative", ">=", -10.0, 0.9)
    assert (up.kind, up.op, up.bound, up.limit) == ("relative", "<=", 10.0, 1.1)
    assert up.left == MetricPath("*", "*", "tpot_ms", "p50")


def test_in_run_ratio() -> None:
    gate = parse_gate(RATIO, ">= 8")
    assert (gate.kind, gate.op, gate.limit) == ("ratio", ">=", 8.0)
    assert gate.right == MetricPath("flask_threads", "c32", "throughput", "output_tok_s")


def test_a_key_may_hold_several_bounds() -> None:
    gates = parse_gates({"a.c1.itl_ms.p50": ["< 2000", "<= +100%"], "a.c1.requests.ok": ">= 8"})
    assert [(g.name, g.kind, g.limit) for g in gates] == [
        ("a.c1.itl_ms.p50", "absolute", 2000.0), ("a.c1.itl_ms.p50", "relative", 2.0),
        ("a.c1.requests.ok", "absolute", 8.0)]


def test_an_open_loop_point_name_keeps_its_dot() -> None:
    gate = parse_gate("flask_threads.r0.5.requests.refused", "<= 0")
    assert gate.left == MetricPath("flask_threads", "r0.5", "requests", "refused")


@pytest.mark.parametrize(("key", "expr", "message"), [
    ("fastapi_batching.c32.ttft_ms.p9", "< 5",
     "gates.\"fastapi_batching.c32.ttft_ms.p9\": unknown statistic 'p9' (expected p50, p90, "
     "p95, p99, mean, max)"),
    ("a.c1.latency.p99", "< 5", "unknown field 'latency'"),
    ("a.c1.throughput.tok_s", "< 5", "unknown throughput part 'tok_s'"),
    ("a.c1.ttft_ms", "< 5", "is not a metric path"),
    ("a.c1.ttft_ms.p99", "under 5", "cannot read bound 'under 5'"),
    ("a.c1.ttft_ms.p99", "= 5", "cannot read bound"),
    ("a.c1.ttft_ms.p99", 5, "the bound must be a string"),
    (RATIO, ">= 10%", "an in-run ratio takes a plain number"),
    ("*.c1.ttft_ms.p50 / b.c1.ttft_ms.p50", "< 2", "names both targets"),
    ("a.*.ttft_ms.p50 / b.c1.ttft_ms.p50", "< 2", "on both sides or on neither"),
    ("a.c1.ttft_ms.p50 / b.c1.ttft_ms.p50 / c.c1.ttft_ms.p50", "< 2", "exactly two"),
    ("a.c1.ttft_ms.p50 / b.c1.ttft_ms.p50", "> 0", "must be positive"),
])
def test_malformed_gates_are_one_line_errors(key: str, expr: object, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_gate(key, expr)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_a_malformed_gate_fails_at_scenario_load(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[targets]]\nname = "flask_threads"\n[gates]\n'
                    '"flask_threads.c1.ttft_ms.p9" = "< 5"\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"^gates\.\"flask_threads\.c1\.ttft_ms\.p9\": "
                                            r"unknown statistic 'p9'"):
        load_scenario(path)
