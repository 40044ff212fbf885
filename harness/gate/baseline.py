"""Baselines: a run saved for relative gates, one per scenario and machine kind.

    results/baselines/<scenario>/<machine-kind>.json   save_baseline(run, root)

holds the run's summary, its manifest, the machine fingerprint and the model hash. The machine
kind is coarse and stable across identical machines: the CPU model, the usable core count and
the device (`machine_kind`), never the host name, so two CI runners of one type share a
baseline and a laptop does not silently compare with a CI runner.

    kind = machine_kind(manifest)          # "amd-epyc-7763-64-core-processor-2c-cpu"
    path = find_baseline(root, "ci", kind)  # None when none was saved for this machine kind
    base = load_baseline(path)             # a baseline file or a run folder
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records.atomic import read_json, write_json
from harness.run.folder import RunDir
from harness.summary.record import RunSummary, SummaryError, read_summary

BASELINE_VERSION = 1
BASELINES = Path("results") / "baselines"


class BaselineError(ValueError):
    """A baseline or run folder cannot be read; the message says why in one line."""


@dataclass(frozen=True)
class SavedBaseline:
    """A baseline as read back: its summary, machine kind and model hash, and where from."""

    summary: RunSummary
    machine_kind: str
    model_hash: str | None
    source: Path


def machine_kind(manifest: dict[str, Any]) -> str:
    """`<cpu model>-<usable cores>c-<device>` as a file-name slug, from a run's manifest."""
    machine = manifest.get("machine") or {}
    cpu = str(machine.get("cpu") or "unknown-cpu")
    cores = machine.get("usable_cores") or machine.get("cores") or 0
    device = str(manifest.get("device") or "cpu")
    return _slug(f"{cpu}-{cores}c-{device}")


def read_manifest(run: Path) -> dict[str, Any]:
    """A run folder's manifest.json; `BaselineError` when absent or unreadable."""
    try:
        data = read_json(RunDir(run).manifest)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{run}: no readable manifest.json ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{run}: manifest.json is not an object")
    return data


def read_run(run: Path) -> tuple[RunSummary, dict[str, Any]]:
    """A run folder's summary and manifest; `BaselineError` with the reason."""
    manifest = read_manifest(run)
    try:
        return read_summary(RunDir(run).summary), manifest
    except SummaryError as exc:
        raise BaselineError(f"{run}: {exc}") from None


def model_hash(manifest: dict[str, Any]) -> str | None:
    model = manifest.get("model") or {}
    value = model.get("hash") if isinstance(model, dict) else None
    return str(value) if value else None


def baseline_path(root: Path, scenario: str, kind: str) -> Path:
    return root / _slug(scenario) / f"{kind}.json"


def save_baseline(run: Path, root: Path = BASELINES) -> Path:
    """Write `run` as the baseline of its scenario on its machine kind; return the file."""
    summary, manifest = read_run(run)
    kind = machine_kind(manifest)
    record = {"baseline_version": BASELINE_VERSION, "scenario": summary.scenario,
              "run": summary.run, "machine_kind": kind, "machine": manifest.get("machine"),
              "device": manifest.get("device"), "model_hash": model_hash(manifest),
              "manifest": manifest, "summary": summary.to_json()}
    return write_json(baseline_path(root, summary.scenario, kind), record)


def find_baseline(root: Path, scenario: str, kind: str) -> Path | None:
    """The saved baseline of `scenario` on machine `kind`, or None."""
    path = baseline_path(root, scenario, kind)
    return path if path.exists() else None


def saved_kinds(root: Path, scenario: str) -> list[str]:
    """Machine kinds with a saved baseline of `scenario` (to say what exists)."""
    folder = root / _slug(scenario)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_baseline(path: Path) -> SavedBaseline:
    """A baseline file, or a run folder used as one."""
    if path.is_dir():
        summary, manifest = read_run(path)
        return SavedBaseline(summary, machine_kind(manifest), model_hash(manifest), path)
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable baseline ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("baseline_version") != BASELINE_VERSION:
        raise BaselineError(f"{path}: not a patternbench baseline (baseline_version "
                            f"{BASELINE_VERSION} expected)")
    try:
        summary = RunSummary.from_json(data.get("summary"))
    except SummaryError as exc:
        raise BaselineError(f"{path}: {exc}") from None
    return SavedBaseline(summary, str(data.get("machine_kind")), data.get("model_hash"), path)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"
