"""Scenario fields for the load client: several drivers, `[client]` and `cpu_affinity`."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.client import ClientSettings
from harness.scenario.load import parse_scenario
from harness.scenario.values import ScenarioError


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


@pytest.mark.parametrize(("fields", "name"), [
    ({"driver": []}, "driver"),
    ({"driver": ["k6", "k6"]}, "twice"),
    ({"driver": 3}, "driver"),
    ({"client": {"conections": 3}}, "conections"),
    ({"client": {"processes": 0}}, "client.processes"),
    ({"client": {"connect_s": 0}}, "client.connect_s"),
    ({"client": {"probe_interval_s": "often"}}, "client.probe_interval_s"),
    ({"client": 5}, "[client]"),
    ({"cpu_affinity": {"target": []}}, "cpu_affinity.target"),
    ({"cpu_affinity": {"targets": [0]}}, "targets"),
    ({"cpu_affinity": {"driver": ["1"]}}, "cpu_affinity.driver"),
    ({"cpu_affinity": [0]}, "cpu_affinity"),
])
def test_bad_client_fields_name_the_field(fields: dict[str, Any], name: str) -> None:
    with pytest.raises(ScenarioError, match=None) as info:
        parse(**fields)
    assert name in str(info.value)


def test_run_refuses_cores_this_process_cannot_use(tmp_path: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    path = tmp_path / "s.toml"
    path.write_text('cpu_affinity = { driver = [4096] }\n[[targets]]\nname = "echo"\n',
                    encoding="utf-8")
    assert main(["run", str(path), "--results", str(tmp_path / "r")]) == 2
    assert "cpu_affinity.driver names core(s) [4096]" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
