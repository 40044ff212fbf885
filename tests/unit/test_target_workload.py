"""Per-target `workload` overrides in a scenario (`[[targets]] workload = { stream = false }`)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.load import parse_scenario
from harness.scenario.values import ScenarioError


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
    ({"output_tokens": 8}, "may set only"),
    ({"stream": "no"}, "stream must be true or false"),
    ({"api": "embeddings"}, "api must be one of"),
])
def test_bad_override_is_a_scenario_error(workload: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(scenario(workload=workload))
