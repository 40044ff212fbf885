"""Per-target `workload` overrides in a scenario (`[[targets]] workload = { stream = false }`)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario


def scenario(**target: Any) -> dict[str, Any]:
    return {"workload": {"stream": True, "output_tokens": 32},
            "targets": [{"name": "flask_threads", "label": "a"},
                        {"name": "flask_threads", "label": "b", **target}]}


def test_override_applies_to_its_target_only() -> None:
    sc = parse_scenario(scenario(workload={"stream": False, "api": "chat"}))
    plain, overridden = (t.effective_workload(sc.workload) for t in sc.targets)
    assert plain.stream is True and plain.api == "completions"
    assert overridden.stream is False and overridden.api == "chat"
    assert overridden.output_tokens == 32  # lengths stay the scenario's


@pytest.mark.parametrize("workload, message", [
    ({"output_tokens": 8},
     "targets[1].workload: unknown key 'output_tokens'; expected one of api, stream"),
    ({"stream": "no"}, "targets[1].workload.stream: must be true or false, got 'no'"),
    ({"api": "embeddings"},
     "targets[1].workload.api: must be one of 'completions', 'chat', got 'embeddings'"),
])
def test_bad_override_is_a_scenario_error(workload: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario(workload=workload))
    assert str(info.value) == message
