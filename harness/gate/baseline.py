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

from harness.records.atomic import read_json, write_json
from harness.records.versioned import exact
from harness.run.folder import RunDir
from harness.run.manifest import Manifest, ManifestError, read_manifest
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


def machine_kind(manifest: Manifest) -> str:
    """`<cpu model>-<usable cores>c-<device>` as a file-name slug, from a run's manifest."""
    machine = manifest.machine
    cores = machine.usable_cores or machine.cores or 0
    return _slug(f"{machine.cpu or 'unknown-cpu'}-{cores}c-{manifest.device or 'cpu'}")


def read_run(run: Path) -> tuple[RunSummary, Manifest]:
    """A run folder's summary and manifest; `BaselineError` with the reason."""
    try:
        manifest = read_manifest(run)
        return read_summary(RunDir(run).summary), manifest
    except (ManifestError, SummaryError) as exc:
        raise BaselineError(f"{run}: {exc}") from None


def baseline_path(root: Path, scenario: str, kind: str) -> Path:
    return root / _slug(scenario) / f"{kind}.json"


def save_baseline(run: Path, root: Path = BASELINES) -> Path:
    """Write `run` as the baseline of its scenario on its machine kind; return the file."""
    summary, manifest = read_run(run)
    kind = machine_kind(manifest)
    record = {"baseline_version": BASELINE_VERSION, "scenario": summary.scenario,
              "run": summary.run, "machine_kind": kind, "machine": exact(manifest.machine),
              "device": manifest.device, "model_hash": manifest.model.hash,
              "manifest": manifest.to_json(), "summary": summary.to_json()}
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
        return SavedBaseline(summary, machine_kind(manifest), manifest.model.hash, path)
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
