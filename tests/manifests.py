"""Typed manifests for tests that feed a report, a verdict, `compare` or a gate.

A manifest is built by the runner's own builder (`build_manifest`) from a real scenario (TOML
tables through the scenario loader), then given the machine, model and date a test sets, so a
fixture has exactly the shape a run writes:

    m = manifest(scenario(targets=[{"name": "external", "label": "endpoint"}]), device="cpu")
    write_manifest(run_dir, replace(m, machine=replace(MACHINE, usable_cores=16)))
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema

from harness.records.atomic import write_json
from harness.run.calibration import Calibration
from harness.run.folder import RunDir
from harness.run.machine import Machine
from harness.run.manifest import GitInfo, Manifest, ModelInfo, build_manifest, read_manifest
from harness.scenario.load import parse_scenario
from harness.scenario.types import Scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"
MACHINE = Machine(hostname="bench-1", platform="Linux-6.1-x86_64", cpu="Xeon", cores=2,
                  usable_cores=2, memory_gb=24.0)
MODEL = ModelInfo(spec="tiny", folder="/m", hash="feedbeef" * 2)
GIT = GitInfo(sha="abc1234def5678", dirty=False)
VERSIONS: dict[str, str | None] = {"python": "3.11.7", "torch": "2.13.0+cpu", "k6": None}
TABLES: dict[str, Any] = {
    "name": "default", "model": "tiny", "seed": 1234,
    "load": {"kind": "closed", "concurrency": [1, 8], "duration_s": 5, "warmup_s": 1},
    "targets": [{"name": "flask_threads", "options": {"threads": 8}},
                {"name": "fastapi_batching"}],
}


def scenario(**tables: Any) -> Scenario:
    """A scenario read by the real loader from `TABLES` with `tables` over them."""
    return parse_scenario(TABLES | tables)


def manifest(sc: Scenario | None = None, *, run: str = "20261201-100000-default-abc1234",
             device: str = "cpu", machine: Machine = MACHINE, model: ModelInfo = MODEL,
             created: str = "2026-12-01T10:00:00+00:00",
             calibration: Calibration | None = None) -> Manifest:
    """The manifest the runner writes for `sc` (default `scenario()`), on `machine`."""
    built = build_manifest(sc or scenario(), RunDir(Path("results") / run),
                           results_root=Path("/nonexistent"), device=device, model=model,
                           scenario_file="scenarios/default.toml", git=GIT)
    return replace(built, created=created, machine=machine, versions=VERSIONS,
                   calibration=calibration)


def write_manifest(run_dir: Path, m: Manifest) -> Path:
    """Write `m` as `run_dir`'s manifest.json, as the runner does."""
    return write_json(RunDir(run_dir).manifest, m.to_json())


def read_manifest_checked(run_dir: Path) -> Manifest:
    """A real run's manifest.json, validated against the committed JSON schema, then read
    through the typed records (as the report and the gate read it)."""
    data = json.loads(RunDir(run_dir).manifest.read_text())
    jsonschema.validate(data, json.loads((DOCS / "manifest.schema.json").read_text()))
    return read_manifest(run_dir)
