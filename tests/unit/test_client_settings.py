"""Scenario fields for the load client: several drivers, `[client]` and `cpu_affinity`."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.client import ClientSettings
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario


def parse(**fields: Any) -> Any:
    return parse_scenario({"targets": [{"name": "echo"}], **fields})


def test_defaults() -> None:
    sc = parse()
    assert (sc.driver, sc.drivers, sc.cpu_affinity) == ("builtin", ("builtin",), {})
    assert sc.client == ClientSettings()
    assert (sc.client.max_dispatch_lag_ms, sc.client.probe_interval_s) == (10.0, 0.5)


def test_several_drivers_and_overrides() -> None:
    sc = parse(driver=["k6", "locust"])
    assert (sc.driver, sc.drivers) == ("k6", ("k6", "locust"))
    assert sc.with_overrides(driver="builtin").drivers == ("builtin",)


def test_client_table_and_affinity() -> None:
    sc = parse(client={"connections": 32, "processes": 2, "probe_interval_s": 0,
                       "max_dispatch_lag_ms": 5, "connect_s": 1.5, "first_token_s": 30,
                       "between_tokens_s": 2},
               cpu_affinity={"target": [0, 1], "driver": 2})
    assert sc.client == ClientSettings(connections=32, processes=2, probe_interval_s=0.0,
                                       max_dispatch_lag_ms=5.0, connect_s=1.5,
                                       first_token_s=30.0, between_tokens_s=2.0)
    assert sc.cpu_affinity == {"target": (0, 1), "driver": (2,)}


@pytest.mark.parametrize(("fields", "message"), [
    ({"driver": []}, "driver: must not be empty, got []"),
    ({"driver": ["k6", "k6"]}, "driver: names 'k6' twice, got ['k6', 'k6']"),
    ({"driver": 3}, "driver: must be a string, got 3"),
    ({"driver": ["k6", ""]}, "driver[1]: must not be empty, got ''"),
    ({"client": {"conections": 3}}, "client: unknown key 'conections'; expected one of "
     "between_tokens_s, connect_s, connections, first_token_s, max_dispatch_lag_ms, "
     "probe_interval_s, processes, retry_base_s, retry_refused"),
    ({"client": {"processes": 0}}, "client.processes: must be ≥ 1, got 0"),
    ({"client": {"connect_s": 0}}, "client.connect_s: must be ≥ 0.001, got 0"),
    ({"client": {"connect_s": "x"}}, "client.connect_s: must be a number, got 'x'"),
    ({"client": {"probe_interval_s": "often"}},
     "client.probe_interval_s: must be a number, got 'often'"),
    ({"client": 5}, "client: must be a table, got 5"),
    ({"cpu_affinity": {"target": []}}, "cpu_affinity.target: must not be empty, got []"),
    ({"cpu_affinity": {"targets": [0]}},
     "cpu_affinity: unknown key 'targets'; expected one of driver, target"),
    ({"cpu_affinity": {"driver": [1, "1"]}},
     "cpu_affinity.driver[1]: must be an integer, got '1'"),
    ({"cpu_affinity": {"driver": -1}}, "cpu_affinity.driver: must be ≥ 0, got -1"),
    ({"cpu_affinity": [0]}, "cpu_affinity: must be a table, got [0]"),
])
def test_bad_client_fields_are_one_line_naming_the_path(fields: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse(**fields)
    assert str(info.value) == message


def test_run_refuses_cores_this_process_cannot_use(tmp_path: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    path = tmp_path / "s.toml"
    path.write_text('cpu_affinity = { driver = [4096] }\n[[targets]]\nname = "echo"\n',
                    encoding="utf-8")
    assert main(["run", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "cpu_affinity.driver names core(s) [4096]" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
