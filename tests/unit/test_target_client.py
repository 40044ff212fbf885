"""A target's own `client = { ... }` knobs over the scenario's `[client]`: clients that retry 503s
beside clients that do not, in one scenario; checked like `[client]`, reaching the driver's job
and recorded in the manifest."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from harness.run.folder import RunDir
from harness.run.launcher import TargetProcess
from harness.run.manifest import build_manifest
from harness.run.point import RunContext, load_job
from harness.samples import Clock
from harness.scenario.client import ClientSettings
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.scenario.types import Scenario
from harness.workload.prompts import PromptFactory
from tests.manifests import GIT, MODEL


def scenario(**client: Any) -> Scenario:
    return parse_scenario({
        "client": {"retry_base_s": 0.1, "connect_s": 2},
        "load": {"kind": "spike", "rate_rps": 10, "spike_rate_rps": 50, "duration_s": 3},
        "targets": [
            {"name": "fastapi_threadpool", "label": "limited"},
            {"name": "fastapi_threadpool", "label": "limited_retry", "client": client},
        ]})


def test_a_target_override_merges_over_the_scenario_client_for_that_target_only() -> None:
    sc = scenario(retry_refused=4, connect_s=5)
    plain, retrying = (t.effective_client(sc.client) for t in sc.targets)
    assert plain == ClientSettings(retry_base_s=0.1, connect_s=2.0)
    assert retrying == ClientSettings(retry_base_s=0.1, connect_s=5.0, retry_refused=4)
    assert sc.client == plain  # the scenario's own stays as written


@pytest.mark.parametrize(("client", "message"), [
    ({"retry_refussed": 4}, "targets[1].client: unknown key 'retry_refussed'; expected one of "
     "between_tokens_s, connect_s, connections, first_token_s, max_dispatch_lag_ms, "
     "probe_interval_s, processes, retry_base_s, retry_refused"),
    ({"retry_refused": -1}, "targets[1].client.retry_refused: must be ≥ 0, got -1"),
    ({"processes": 0}, "targets[1].client.processes: must be ≥ 1, got 0"),
    ({"connect_s": "soon"}, "targets[1].client.connect_s: must be a number, got 'soon'"),
])
def test_a_bad_override_is_a_one_line_scenario_error(client: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario(**client)
    assert str(info.value) == message


def test_an_override_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"^targets\[0\]\.client: must be a table, got 4$"):
        parse_scenario({"targets": [{"name": "echo", "client": 4}]})


def test_the_driver_job_and_the_manifest_carry_each_target_s_client(tokenizer: Any,
                                                                     tmp_path: Path) -> None:
    sc = scenario(retry_refused=4)
    run = RunDir(tmp_path / "run")
    ctx = RunContext(run=run, scenario=sc, prompts=PromptFactory(tokenizer, sc.workload, 1),
                     clock=Clock(), out=io.StringIO())
    target = TargetProcess(label="x", url="http://127.0.0.1:1", process=None,
                           log_path=tmp_path / "log")
    jobs = [load_job(ctx, tc, target, sc.points[0], tc.label) for tc in sc.targets]
    assert [(j.client.retry_refused, j.client.retry_base_s, j.client.connect_s) for j in jobs] == [
        (0, 0.1, 2.0), (4, 0.1, 2.0)]
    manifest = build_manifest(sc, run, results_root=tmp_path, scenario_file=None, device="cpu",
                              model=MODEL, git=GIT)
    resolved = manifest.scenario.resolved
    assert resolved is not None and resolved.client is not None
    assert resolved.client.retry_refused == 0
    assert [t.client.retry_refused if t.client else None for t in resolved.targets] == [0, 4]
