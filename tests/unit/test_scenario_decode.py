"""The one scenario decoder, through the loader: each table of a TOML file (as `tomllib` reads
it) refuses an unknown key, a wrong type and a value out of range in one line that starts with
the TOML path, list index, target index and inline table included."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.arrivals import plan
from harness.scenario.client import ClientSettings
from harness.scenario.decode import ScenarioError
from harness.scenario.load import load_scenario, parse_scenario
from harness.scenario.types import ARRIVAL_KINDS, Scenario

REPO = Path(__file__).resolve().parents[2]
TARGET = '\n[[targets]]\nname = "flask_threads"\n'


def parse(toml: str) -> Scenario:
    """`toml` with one target appended, read as the loader reads a file."""
    return parse_scenario(tomllib.loads(toml + TARGET))


def refusal(toml: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(toml)
    return str(info.value)


NESTED = [
    ("[load]\nconcurrency = [1, 8, 0]", "load.concurrency[2]: must be ≥ 1, got 0"),
    ('[[targets]]\nname = "echo"\n[[targets]]\nname = "echo"\nlabel = "b"\noptions = 3',
     "targets[1].options: must be a table, got 3"),
    ('[[targets]]\nname = "echo"\nlabel = "e"\nclient = { connect_s = "x" }',
     "targets[0].client.connect_s: must be a number, got 'x'"),
    ('[[targets]]\nname = "echo"\nlabel = "e"\nworkload = { api = "embeddings" }',
     "targets[0].workload.api: must be one of 'completions', 'chat', got 'embeddings'"),
    ("cpu_affinity = { target = [0], driver = [1, -2] }",
     "cpu_affinity.driver[1]: must be ≥ 0, got -2"),
    ('[workload]\noutput_tokens = { dist = "lognormal", mean = 64, stdev = "wide" }',
     "workload.output_tokens.stdev: must be a number, got 'wide'"),
    ('[slo]\n"ttft.ms" = "fast"', "slo.\"ttft.ms\": must be a number, got 'fast'"),
    ('driver = ["builtin", 6]', "driver[1]: must be a string, got 6"),
]


@pytest.mark.parametrize(("toml", "message"), NESTED, ids=[m.split(":")[0] for _, m in NESTED])
def test_an_error_names_the_path_down_to_the_list_item(toml: str, message: str) -> None:
    assert refusal(toml) == message


# Per table: an unknown key, a wrong type, a value out of range.
TABLES = [
    ("nmae = 'x'", "top level: unknown key 'nmae'; expected one of client, cpu_affinity, "
     "description, device, driver, fault, gates, load, model, name, repeats, seed, slo, targets, "
     "timeout_s, workload"),
    ("seed = 1.5", "seed: must be an integer, got 1.5"),
    ("timeout_s = 0", "timeout_s: must be ≥ 0.001, got 0"),
    ("[workload]\npromt_tokens = 8", "workload: unknown key 'promt_tokens'; expected one of api, "
     "ignore_eos, lengths, min_p, output_tokens, output_tokens_stdev, prefix_tokens, prefixes, "
     "prompt_reuse, prompt_tokens, prompt_tokens_stdev, prompts, seed, stream, temperature, "
     "think_time_s, top_k, top_p, turns"),
    ("[workload]\ntemperature = 'hot'", "workload.temperature: must be a number, got 'hot'"),
    ("[workload]\ntop_p = 1.5", "workload.top_p: must be in (0, 1], got 1.5"),
    ("[load]\nkind = 'poisson'\nconcurrency = 4", "load: unknown key 'concurrency' for kind "
     "'poisson'; expected one of duration_s, kind, max_duration_s, max_requests, min_requests, "
     "rate_rps, warmup_s"),
    ("[load]\nkind = 'gamma'\nrate_rps = [2, '4']", "load.rate_rps[1]: must be a number, got '4'"),
    ("[load]\nkind = 'trace'\npath = 't.jsonl'\nduration_s = 0.05",
     "load.duration_s: must be ≥ 0.1, got 0.05"),
    ("[client]\nretries = 2", "client: unknown key 'retries'; expected one of between_tokens_s, "
     "connect_s, connections, first_token_s, max_dispatch_lag_ms, probe_interval_s, processes, "
     "retry_base_s, retry_refused"),
    ("[client]\nconnections = 1.5", "client.connections: must be an integer, got 1.5"),
    ("[client]\nfirst_token_s = -1", "client.first_token_s: must be ≥ 0.001, got -1"),
    ("cpu_affinity = { load = [1] }",
     "cpu_affinity: unknown key 'load'; expected one of driver, target"),
    ("cpu_affinity = { target = '0' }", "cpu_affinity.target: must be an integer, got '0'"),
    ("[fault]\nkind = 'disconnect'\nat_s = 1", "fault: unknown key 'at_s' for kind 'disconnect'; "
     "expected one of after_tokens, kind, share"),
    ("[fault]\nkind = 'disconnect'\nafter_tokens = 'two'",
     "fault.after_tokens: must be an integer, got 'two'"),
    ("[slo]\nttft_ms = -5", "slo.ttft_ms: must be ≥ 0, got -5"),
    ("gates = 3", "gates: must be a table, got 3"),
]


@pytest.mark.parametrize(("toml", "message"), TABLES, ids=[m.split(":")[0] for _, m in TABLES])
def test_each_table_refuses_unknown_keys_wrong_types_and_values_out_of_range(
        toml: str, message: str) -> None:
    assert refusal(toml) == message


@pytest.mark.parametrize(("target", "message"), [
    ('name = "echo"\noptoins = {}', "targets[0]: unknown key 'optoins'; expected one of client, "
     "fault, label, name, options, workload"),
    ("name = 3", "targets[0].name: must be a string, got 3"),
    ('label = "x"', "targets[0].name: must be given"),
    ('name = "echo"\nclient = { processes = 0 }',
     "targets[0].client.processes: must be ≥ 1, got 0"),
])
def test_a_target_table_is_checked_the_same_way(target: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(tomllib.loads(f"[[targets]]\n{target}\n"))
    assert str(info.value) == message


def test_toml_ints_lists_and_lone_values_read_as_the_declared_types() -> None:
    sc = parse("driver = 'builtin'\ncpu_affinity = { target = 0, driver = [1, 2] }\n"
               "[client]\nconnect_s = 2\n[workload]\ntemperature = 1\n[load]\nconcurrency = 8")
    assert sc.drivers == ("builtin",)
    assert sc.cpu_affinity == {"target": (0,), "driver": (1, 2)}
    assert sc.client == ClientSettings(connect_s=2.0)
    assert type(sc.client.connect_s) is float and type(sc.workload.temperature) is float
    assert [p.concurrency for p in sc.points] == [8]
    rates = parse("[load]\nkind = 'constant'\nrate_rps = 3")
    assert [(p.name, p.rate_rps) for p in rates.points] == [("r3", 3.0)]


def test_arrival_extras_stay_as_written_in_the_point_params() -> None:
    (gamma,) = parse("[load]\nkind = 'gamma'\nrate_rps = 2\nburstiness = 2").points
    assert gamma.params == {"burstiness": 2} and type(gamma.params["burstiness"]) is int
    (closed,) = parse("[load]\nconcurrency = 2\nwarmup_s = 2\nramp_up_s = 1").points
    assert closed.params == {"ramp_up_s": 1} and closed.ramp_up_s == 1.0


@pytest.mark.parametrize("kind", ARRIVAL_KINDS)
def test_every_arrival_kind_is_a_load_kind(kind: str) -> None:
    level = {"closed": "concurrency = 2", "trace": "path = 't.jsonl'"}.get(kind, "rate_rps = 2")
    (point,) = parse(f"[load]\nkind = '{kind}'\n{level}").points
    assert point.kind == kind


def test_a_bad_arrival_extra_is_still_refused_when_the_point_is_planned() -> None:
    (point,) = parse("[load]\nkind = 'gamma'\nrate_rps = 2\nburstiness = 'high'").points
    with pytest.raises(ScenarioError, match="burstiness"):
        plan(point, 1)


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path: Path) -> None:
    assert load_scenario(path).targets


def test_a_broken_file_is_one_line_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[load]\nconcurrency = [1, 4, 0]\n[[targets]]\nname = "echo"\n',
                    encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == "load.concurrency[2]: must be ≥ 1, got 0"
