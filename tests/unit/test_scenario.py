"""Scenario files: TOML into frozen dataclasses, and a one-line ScenarioError naming the TOML path
otherwise."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.gate.spec import Gate, MetricPath
from harness.scenario.decode import ScenarioError
from harness.scenario.load import load_scenario, parse_scenario
from harness.scenario.types import LoadPoint, Scenario, TargetConfig, Workload
from harness.summary.record import Load

REPO = Path(__file__).resolve().parents[2]

FULL = """
name = "full"
description = "Every field set."
model = "sim:ttft_ms=5,tpot_ms=2"
seed = 99
driver = "k6"
timeout_s = 60
device = "cpu"

[workload]
prompt_tokens = 256
output_tokens = 32
stream = false
api = "chat"
temperature = 0.5
ignore_eos = false
prompt_tokens_stdev = 12.5
output_tokens_stdev = 4

[load]
kind = "closed"
concurrency = [1, 8]
duration_s = 5
warmup_s = 1.5
max_requests = 500

[slo]
ttft_ms = 500
tpot_ms = 50

[gates]
"flask_threads.c8.ttft_ms.p99" = "< 500"

[[targets]]
name = "flask_threads"
options = { threads = 8 }

[[targets]]
name = "flask_threads"
label = "flask_threads_32"
options = { threads = 32 }

[[targets]]
name = "fastapi_threadpool"
"""


def minimal(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"targets": [{"name": "flask_threads"}]}
    data.update(overrides)
    return data


def test_full_file(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(FULL, encoding="utf-8")
    sc = load_scenario(path)
    assert (sc.name, sc.description, sc.model, sc.seed, sc.driver, sc.timeout_s, sc.device) == (
        "full", "Every field set.", "sim:ttft_ms=5,tpot_ms=2", 99, "k6", 60.0, "cpu")
    assert sc.workload == Workload(prompt_tokens=256, output_tokens=32, stream=False, api="chat",
                                   temperature=0.5, ignore_eos=False, prompt_tokens_stdev=12.5,
                                   output_tokens_stdev=4)
    assert sc.points == (
        LoadPoint(name="c1", kind="closed", duration_s=5.0, warmup_s=1.5, concurrency=1,
                  max_requests=500),
        LoadPoint(name="c8", kind="closed", duration_s=5.0, warmup_s=1.5, concurrency=8,
                  max_requests=500),
    )
    assert sc.targets == (
        TargetConfig(name="flask_threads", label="flask_threads", options={"threads": 8}),
        TargetConfig(name="flask_threads", label="flask_threads_32", options={"threads": 32}),
        TargetConfig(name="fastapi_threadpool", label="fastapi_threadpool", options={}),
    )
    assert sc.slo == {"ttft_ms": 500.0, "tpot_ms": 50.0}
    assert sc.gates == (Gate(name="flask_threads.c8.ttft_ms.p99", expr="< 500", kind="absolute",
                             op="<", bound=500.0,
                             left=MetricPath("flask_threads", "c8", "ttft_ms", "p99")),)
    assert sc.points[1].load() == Load(kind="closed", concurrency=8)


def test_shipped_default_scenario_loads() -> None:
    sc = load_scenario(REPO / "scenarios" / "default.toml")
    assert [p.name for p in sc.points] == ["c1", "c4", "c8"]
    from targets import TARGETS

    assert {"flask_threads", "fastapi_threadpool"} <= {t.label for t in sc.targets}
    assert all(t.name in TARGETS for t in sc.targets)


def test_defaults_and_name_from_file(tmp_path: Path) -> None:
    path = tmp_path / "smoke.toml"
    path.write_text('targets = ["flask_threads"]\n', encoding="utf-8")
    sc = load_scenario(path)
    assert (sc.name, sc.model, sc.seed, sc.driver, sc.timeout_s) == (
        "smoke", "tiny", 0, "builtin", 300.0)
    assert sc.workload == Workload()
    assert sc.points == (LoadPoint(name="c1", kind="closed", duration_s=10.0, warmup_s=2.0,
                                   concurrency=1),)
    assert sc.targets == (TargetConfig(name="flask_threads", label="flask_threads"),)


def test_single_concurrency_need_not_be_a_list() -> None:
    sc = parse_scenario(minimal(load={"concurrency": 4}))
    assert [(p.name, p.concurrency) for p in sc.points] == [("c4", 4)]


def test_rates_produce_r_names() -> None:
    sc = parse_scenario(minimal(load={"kind": "poisson", "rate_rps": [0.5, 2, 12.5]}))
    assert [p.name for p in sc.points] == ["r0.5", "r2", "r12.5"]
    assert [p.rate_rps for p in sc.points] == [0.5, 2.0, 12.5]
    assert {p.concurrency for p in sc.points} == {None}
    assert {p.kind for p in sc.points} == {"poisson"}
    assert sc.points[0].load() == Load(kind="poisson", rate_rps=0.5)


def test_arrival_shape_extras_go_to_params() -> None:
    sc = parse_scenario(minimal(load={"kind": "gamma", "rate_rps": 4, "burstiness": 2.0}))
    (point,) = sc.points
    assert (point.name, point.params) == ("r4", {"burstiness": 2.0})
    assert point.load() == Load(kind="gamma", rate_rps=4.0, params={"burstiness": 2.0})


def test_trace_is_one_point() -> None:
    sc = parse_scenario(minimal(load={"kind": "trace", "path": "trace.jsonl"}))
    assert [(p.name, p.kind, p.params) for p in sc.points] == [
        ("trace", "trace", {"path": "trace.jsonl"})]


def test_scenario_is_frozen() -> None:
    sc = parse_scenario(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.seed = 1  # type: ignore[misc]  # assigning to a frozen field is the point
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.workload.prompt_tokens = 1  # type: ignore[misc]  # same


MALFORMED = [
    (minimal(concurrency=[1]), "top level: unknown key 'concurrency'; expected one of client, "
     "cpu_affinity, description, device, driver, fault, gates, load, model, name, repeats, seed, "
     "slo, targets, timeout_s, workload"),
    (minimal(workload={"prompt_len": 10}), "workload: unknown key 'prompt_len'; expected one of "
     "api, ignore_eos, lengths, min_p, output_tokens, output_tokens_stdev, prefix_tokens, "
     "prefixes, prompt_reuse, prompt_tokens, prompt_tokens_stdev, prompts, seed, stream, "
     "temperature, think_time_s, top_k, top_p, turns"),
    (minimal(load={"kind": "bursty"}), "load.kind: must be one of 'closed', 'constant', "
     "'poisson', 'gamma', 'ramp', 'spike', 'trace', 'capacity', got 'bursty'"),
    (minimal(seed="abc"), "seed: must be an integer, got 'abc'"),
    (minimal(seed=True), "seed: must be an integer, got True"),
    (minimal(workload={"prompt_tokens": 1.5}),
     "workload.prompt_tokens: must be an integer, got 1.5"),
    (minimal(workload={"output_tokens": 0}), "workload.output_tokens: must be ≥ 1, got 0"),
    (minimal(workload={"api": "responses"}),
     "workload.api: must be one of 'completions', 'chat', got 'responses'"),
    (minimal(load={"duration_s": "ten"}), "load.duration_s: must be a number, got 'ten'"),
    (minimal(load={"warmup_s": -1}), "load.warmup_s: must be ≥ 0, got -1"),
    (minimal(load={"max_requests": -1}), "load.max_requests: must be ≥ 0, got -1"),
    (minimal(load={"concurrency": [1, "8"]}),
     "load.concurrency[1]: must be an integer, got '8'"),
    (minimal(load={"concurrency": 0}), "load.concurrency: must be ≥ 1, got 0"),
    (minimal(load={"concurrency": []}), "load.concurrency: must not be empty, got []"),
    (minimal(load={"kind": "constant", "rate_rps": [0]}),
     "load.rate_rps[0]: must be ≥ 1e-06, got 0"),
    (minimal(load={"kind": "poisson", "rate_rps": ["fast"]}),
     "load.rate_rps[0]: must be a number, got 'fast'"),
    (minimal(load={"kind": "poisson", "rate_rps": []}),
     "load.rate_rps: must not be empty, got []"),
    ({"name": "x"}, "targets: must be given"),
    (minimal(targets=[]), "targets: must not be empty, got []"),
    (minimal(targets=[{"name": "a"}, {"label": "b"}]), "targets[1].name: must be given"),
    (minimal(targets=[{"name": "a"}, "a"]),
     "targets: labels must be unique; repeated: 'a' (set label = ...)"),
    (minimal(targets=[{"name": "a", "label": "x"}, {"name": "b", "label": "x"}]),
     "targets: labels must be unique; repeated: 'x' (set label = ...)"),
    (minimal(workload={"seed": "per-request"}),
     "workload.seed: must be one of 'none', 'per_request', got 'per-request'"),
    (minimal(workload={"seed": 5}), "workload.seed: must be a string, got 5"),
    (minimal(workload={"prompt_reuse": "yes"}),
     "workload.prompt_reuse: must be true or false, got 'yes'"),
    (minimal(workload={"top_p": 0}), "workload.top_p: must be in (0, 1], got 0"),
    (minimal(workload={"top_p": 1.5}), "workload.top_p: must be in (0, 1], got 1.5"),
    (minimal(workload={"top_k": -1}), "workload.top_k: must be ≥ 0, got -1"),
    (minimal(workload={"min_p": 2}), "workload.min_p: must be in [0, 1], got 2"),
    (minimal(load={"min_requests": -1}), "load.min_requests: must be ≥ 0, got -1"),
    (minimal(load={"min_requests": 10, "duration_s": 5, "max_duration_s": 2}),
     "load.max_duration_s: must be ≥ load.duration_s (5), got 2"),
    (minimal(load={"kind": "trace", "path": "t.jsonl", "min_requests": 5}),
     "load.min_requests: works for kinds closed, constant, poisson, gamma, not 'trace'"),
    (minimal(driver="k6", load={"min_requests": 5}),
     "load.min_requests: is run by the builtin driver only, not 'k6'"),
    (minimal(repeats=0), "repeats: must be ≥ 1, got 0"),
    (minimal(slo={"ttft_ms": "fast"}), "slo.ttft_ms: must be a number, got 'fast'"),
    (minimal(timeout_s="long"), "timeout_s: must be a number, got 'long'"),
    (minimal(workload={"stream": "false"}), "workload.stream: must be true or false, got 'false'"),
    (minimal(targets=[{"name": "a", "options": 3}]), "targets[0].options: must be a table, got 3"),
    (minimal(targets=[{"name": "a", "option": {"threads": 8}}]), "targets[0]: unknown key "
     "'option'; expected one of client, fault, label, name, options, workload"),
    (minimal(load={"concurency": [1, 8]}), "load: unknown key 'concurency' for kind 'closed'; "
     "expected one of concurrency, duration_s, kind, max_duration_s, max_requests, min_requests, "
     "ramp_up_s, warmup_s"),
    (minimal(model=5), "model: must be a string, got 5"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED,
                         ids=[m.split(":")[0] for _, m in MALFORMED])
def test_malformed_scenario_is_one_line_naming_the_path(data: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data)
    assert str(info.value) == message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = \n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.toml: invalid TOML"):
        load_scenario(path)


def three_targets() -> Scenario:
    return parse_scenario(minimal(targets=[
        {"name": "flask_threads", "options": {"threads": 8}},
        {"name": "flask_threads", "label": "flask_32", "options": {"threads": 32}},
        {"name": "fastapi_threadpool"},
    ]))


def test_with_overrides_filters_by_label_or_name() -> None:
    sc = three_targets()
    by_label = sc.with_overrides(targets=["flask_32"])
    assert [t.label for t in by_label.targets] == ["flask_32"]
    assert by_label.targets[0].options == {"threads": 32}
    by_name = sc.with_overrides(targets=["fastapi_threadpool", "flask_threads"])
    assert [t.label for t in by_name.targets] == ["flask_threads", "flask_32",
                                                  "fastapi_threadpool"]
    assert [t.label for t in sc.targets] == ["flask_threads", "flask_32", "fastapi_threadpool"]


def test_with_overrides_adds_unknown_targets_with_default_options() -> None:
    out = three_targets().with_overrides(targets=["flask_32", "zzz", "aaa"])
    assert out.targets == (
        TargetConfig(name="flask_threads", label="flask_32", options={"threads": 32}),
        TargetConfig(name="aaa", label="aaa"),
        TargetConfig(name="zzz", label="zzz"),
    )


def test_with_overrides_replaces_driver_model_device() -> None:
    sc = three_targets()
    out = sc.with_overrides(driver="locust", model="tiny2", device="cuda")
    assert (out.driver, out.model, out.device) == ("locust", "tiny2", "cuda")
    assert out.targets == sc.targets and out.points == sc.points
    assert (sc.driver, sc.model, sc.device) == ("builtin", "tiny", "auto")
    assert sc.with_overrides() == sc


def test_seed_prompt_reuse_min_requests_and_repeats_defaults_and_values() -> None:
    plain = parse_scenario(minimal())
    assert (plain.workload.seed, plain.workload.prompt_reuse, plain.repeats) == ("none", False, 1)
    assert (plain.points[0].min_requests, plain.points[0].max_duration_s) == (0, 60.0)
    sc = parse_scenario(minimal(
        repeats=3, workload={"seed": "per_request", "prompt_reuse": True},
        load={"concurrency": [1, 4], "min_requests": 700, "max_duration_s": 90}))
    assert (sc.workload.seed, sc.workload.prompt_reuse, sc.repeats) == ("per_request", True, 3)
    assert [(p.min_requests, p.max_duration_s) for p in sc.points] == [(700, 90.0), (700, 90.0)]
    assert "min_requests" not in sc.points[0].params


def test_a_driver_override_that_cannot_run_min_requests_is_refused() -> None:
    sc = parse_scenario(minimal(load={"min_requests": 100}))
    assert sc.with_overrides(driver="builtin").drivers == ("builtin",)
    with pytest.raises(ScenarioError, match="builtin driver only, not 'locust'"):
        sc.with_overrides(driver="locust")
