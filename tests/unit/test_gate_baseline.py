"""Baselines: saved per scenario and machine kind, found by default, refused across kinds or
models; the gate command's exit codes over stored runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.gate.baseline import (
    BaselineError,
    find_baseline,
    load_baseline,
    machine_kind,
    save_baseline,
)
from harness.records.atomic import write_json
from harness.records.typed_json import encode
from harness.run.machine import Machine
from harness.run.manifest import Manifest, ModelInfo, read_manifest
from harness.summary.record import PointSummary
from tests.manifests import manifest, scenario, write_manifest
from tests.summaries import streamed_point, write_summary

MACHINE = Machine(hostname="runner-17", platform="Linux-6.8",
                  cpu="AMD EPYC 7763 64-Core Processor", cores=4, usable_cores=2, memory_gb=15.6)
GATES = {"*.c4.tpot_ms.p50": "<= +10%", "fastapi_batching.c4.ttft_ms.p50": "< 1500"}
COMMITTED = Path(__file__).resolve().parents[2] / "results" / "baselines"


def ci_manifest(run: str, machine: Machine = MACHINE, model: str = "3f1c0a9e5b7d2c41",
                gates: dict[str, str] = GATES) -> Manifest:
    ci = scenario(name="ci", gates=gates, load={"kind": "closed", "concurrency": [4]},
                  targets=[{"name": "fastapi_batching"}])
    return manifest(ci, run=run, machine=machine,
                    model=ModelInfo(spec="tiny", folder="/x", hash=model))


def stored_run(root: Path, name: str, tpot_ms: float, seed: int, **kw: Any) -> Path:
    run = root / name
    points: list[PointSummary] = [streamed_point("fastapi_batching", "c4", concurrency=4,
                                                 ttft_ms=40.0, tpot_ms=tpot_ms, requests=60,
                                                 tokens=8, seed=seed)]
    write_summary(run, points)
    data = json.loads((run / "summary.json").read_text())
    write_json(run / "summary.json", data | {"run": name, "scenario": "ci"})
    write_manifest(run, ci_manifest(name, **kw))
    return run


def test_machine_kind_is_coarse_and_ignores_the_host() -> None:
    kind = machine_kind(ci_manifest("r"))
    assert kind == "amd-epyc-7763-64-core-processor-2c-cpu"
    other_host = machine_kind(ci_manifest("r", replace(MACHINE, hostname="runner-3")))
    assert other_host == kind
    assert machine_kind(ci_manifest("r", replace(MACHINE, usable_cores=16))) != kind


def test_save_then_find_and_load(tmp_path: Path) -> None:
    run = stored_run(tmp_path, "20261201-1-ci-abc", 5.0, 1)
    path = save_baseline([run], tmp_path / "baselines")
    kind = machine_kind(ci_manifest("r"))
    assert path == tmp_path / "baselines" / "ci" / f"{kind}.json"
    assert find_baseline(tmp_path / "baselines", "ci", kind) == path
    assert find_baseline(tmp_path / "baselines", "ci", "other-kind") is None
    saved = load_baseline(path)
    assert (saved.machine_kind, saved.model_hash) == (kind, "3f1c0a9e5b7d2c41")
    assert saved.summary.points[0].tpot_ms == json_round(run).points[0].tpot_ms
    record = json.loads(path.read_text())
    assert record["machine"] == encode(MACHINE) and record["manifest"]["run"] == "20261201-1-ci-abc"
    assert Manifest.from_json(record["manifest"]) == read_manifest(run)
    with pytest.raises(BaselineError, match="not a patternbench baseline"):
        load_baseline(run / "summary.json")


def json_round(run: Path) -> Any:
    return load_baseline(run).summary


def gate(*args: str) -> int:
    return main(["gate", *args])


def test_gate_exit_codes_over_stored_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    runs = [str(stored_run(tmp_path, f"base{s}", 5.0, s)) for s in (1, 4, 5)]
    roots = ["--baselines", str(tmp_path / "baselines")]
    assert main(["baseline", "save", *runs, *roots]) == 0
    saved = capsys.readouterr().out
    assert "(3 runs per point)" in saved and "fastapi_batching.c4: throughput" in saved
    same = stored_run(tmp_path, "same", 5.0, 2)
    assert gate(str(same), *roots) == 0
    assert (same / "gate.json").exists() and (same / "gate.junit.xml").exists()
    slower = stored_run(tmp_path, "slower", 6.0, 3)
    assert gate(str(slower), *roots) == 1
    out = capsys.readouterr().out
    assert "fastapi_batching.c4.tpot_ms.p50" in out and "gate: exit 1" in out
    # one run as the baseline: a change between two single runs cannot be judged
    assert gate(str(slower), "--baseline", runs[0]) == 2
    assert "run-to-run noise unknown" in capsys.readouterr().out


def test_runs_of_other_settings_cannot_share_a_baseline_or_judge_each_other(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [stored_run(tmp_path, f"base{s}", 5.0, s) for s in (1, 4, 5)]
    save_baseline(runs, tmp_path / "baselines")
    longer = stored_run(tmp_path, "longer", 5.0, 2)
    edited = replace(ci_manifest("longer"), scenario=ci_manifest("x").scenario)
    resolved = edited.scenario.resolved
    assert resolved is not None
    points = tuple(replace(p, duration_s=p.duration_s * 2) for p in resolved.points)
    write_manifest(longer, replace(edited, scenario=replace(
        edited.scenario, resolved=replace(resolved, points=points))))
    assert gate(str(longer), "--baselines", str(tmp_path / "baselines")) == 2
    assert "baseline with other settings: points[0].duration_s" in capsys.readouterr().out
    with pytest.raises(BaselineError, match=r"cannot join .* baseline with other settings"):
        save_baseline([*runs, longer], tmp_path / "baselines")


def test_gate_cannot_judge_across_machine_kinds_or_models(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    base = stored_run(tmp_path, "base", 5.0, 1)
    other = stored_run(tmp_path, "other", 6.0, 2, machine=replace(MACHINE, cpu="Intel Xeon"))
    assert gate(str(other), "--baseline", str(base)) == 2
    assert "baseline from another machine kind" in capsys.readouterr().out
    assert gate(str(other), "--baseline", str(base), "--skip-relative-on-mismatch") == 0
    remodel = stored_run(tmp_path, "remodel", 5.0, 3, model="0000000000000000")
    assert gate(str(remodel), "--baseline", str(base)) == 2
    assert "baseline from another model" in capsys.readouterr().out
    assert gate(str(remodel), "--baselines", str(tmp_path / "none")) == 2
    assert "no baseline for scenario 'ci'" in capsys.readouterr().out


def test_gate_without_gates_or_summary_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = stored_run(tmp_path, "bare", 5.0, 1, gates={})
    assert gate(str(bare)) == 2
    assert capsys.readouterr().err.strip() == f"patternbench: {bare}: its scenario has no [gates]"
    assert gate(str(tmp_path / "nothing")) == 2


def test_the_committed_baselines_still_load_with_the_manifest_they_embed() -> None:
    """results/baselines/ holds files saved before the manifest was typed: each loads as a
    baseline, and the manifest it embeds (no schema_version, no resolved client) decodes."""
    paths = sorted(COMMITTED.glob("*/*.json"))
    paths = [p for p in paths if "baseline_version" in json.loads(p.read_text())]
    assert paths
    for path in paths:
        saved = load_baseline(path)
        embedded = Manifest.from_json(json.loads(path.read_text())["manifest"])
        assert embedded.schema_version == 1
        assert saved.machine_kind == machine_kind(embedded)
        assert saved.model_hash == embedded.model.hash
