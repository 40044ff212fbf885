"""`patternbench capacity URL` without the run: its in-memory scenario, --slo parsing and the
plain-language answer read from a summary shaped like the runner writes it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.run.capacity_url import EndpointOptions, answer, endpoint_scenario, parse_slo
from harness.scenario.decode import ScenarioError
from harness.summary.record import (
    SCHEMA_VERSION,
    Capacity,
    CapacityLevel,
    RunSummary,
    StopReason,
    TargetRun,
)


def test_parse_slo() -> None:
    assert parse_slo("ttft_ms=500, tpot_ms=50") == {"ttft_ms": 500.0, "tpot_ms": 50.0}
    with pytest.raises(ScenarioError, match="key=number pairs"):
        parse_slo("ttft_ms:500")


def test_scenario_targets_the_url_with_a_capacity_load() -> None:
    scenario = endpoint_scenario(EndpointOptions(url="http://127.0.0.1:9/v1", model="served",
                                                 slo={"ttft_ms": 500.0}, share=0.8,
                                                 budget_s=40, stream=False))
    (target,) = scenario.targets
    assert (target.name, target.options["url"], target.options["model"]) == (
        "external", "http://127.0.0.1:9/v1", "served")
    assert scenario.capacity is not None and scenario.capacity.budget_s == 40
    assert scenario.slo == {"ttft_ms": 500.0} and scenario.slo_share == 0.8
    assert scenario.workload.stream is False


def summary(cap: Capacity | None, status: str = "ok", error: str | None = None) -> RunSummary:
    target = TargetRun(name="external", options={}, status="ok" if status == "ok" else "failed",
                       error=error)
    return RunSummary(schema_version=SCHEMA_VERSION, run="r", scenario="endpoint",
                      interrupted=False, targets={"endpoint": target}, points=(),
                      capacity={"endpoint": cap} if cap else {})


def level(c: int, fraction: float) -> CapacityLevel:
    return CapacityLevel(level=c, point=f"c{c}", passed=fraction >= 0.9,
                         good_fraction=fraction, goodput_req_s=c * 1.5)


def capacity(levels: list[CapacityLevel], stopped: StopReason = "resolved") -> Capacity:
    passed = [lv for lv in levels if lv.passed]
    failed = [lv for lv in levels if not lv.passed]
    return Capacity(axis="concurrency", arrival="closed",
                    slo={"ttft_ms": 500.0, "tpot_ms": 50.0}, share=0.9,
                    last_pass=max(passed, key=lambda lv: lv.level) if passed else None,
                    first_fail=min(failed, key=lambda lv: lv.level) if failed else None,
                    stopped=stopped, elapsed_s=40.0, budget_s=120.0, levels=tuple(levels))


def test_answer_states_the_interval() -> None:
    cap = capacity([level(1, 1.0), level(2, 1.0), level(4, 1.0), level(8, 0.55),
                    level(6, 0.95), level(7, 0.7)])
    assert answer(summary(cap)) == (
        "Capacity: 6 requests at once (first token ≤ 500 ms and ≥ 20 tok/s each, for 90% of "
        "requests); 7 fails: only 70% of requests met it.")


def test_answer_for_max_level_first_level_failing_and_unreachable() -> None:
    top = capacity([level(1, 1.0), level(2, 1.0)], "max_level")
    assert answer(summary(top)).endswith("Capacity: ≥ 2 requests at once (first token ≤ 500 ms "
                                         "and ≥ 20 tok/s each, for 90% of requests), the "
                                         "highest level searched.")
    low = capacity([level(1, 0.4)], "fails_at_start")
    assert answer(summary(low)).startswith("Capacity: below 1 request at once (")
    assert answer(summary(None, "failed", "external: http://x/health: connection refused")) \
        == "Could not measure: external: http://x/health: connection refused"


def test_a_dead_server_gets_no_capacity() -> None:
    """The issue's case: the server killed during the search; the levels after its death were
    never measured, and none of the levels before it is a capacity."""
    died = CapacityLevel(level=16, point="c16", passed=False, good_fraction=39 / 87,
                         goodput_req_s=None, judged="died",
                         why="the target stopped answering: 5 failed /health probes")
    cap = capacity([level(1, 1.0), level(2, 1.0), level(4, 1.0), level(8, 1.0)], "target_died")
    cap = replace(cap, levels=(*cap.levels, died))
    dead = summary(cap, "failed", "the target stopped answering: 5 failed /health probes")
    dead = replace(dead, targets={"endpoint": replace(dead.targets["endpoint"],
                                                      failed_point="c16")})
    assert answer(dead) == ("No capacity: the target died at c16 (the target stopped "
                            "answering: 5 failed /health probes); the levels measured before "
                            "it are in the report, none of them is a capacity.")
