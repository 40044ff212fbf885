"""Baselines: runs saved for relative gates and `compare`, one per scenario and machine kind.

    results/baselines/<scenario>/<machine-kind>.json   save_baseline([run, run, run], root)

holds the runs' points as one summary (run j's repeats numbered after run j − 1's, so the k
runs are k repeats of every point: their spread is the machine's run-to-run noise, which a
relative gate's prediction interval and `compare` of two single runs need), the first run's
manifest, the machine fingerprint and the model hash. The runs must be of one scenario with
the same settings, machine kind and model; 3 or more runs, interleaved with nothing else on the
machine, are what `baseline save` asks for (fewer are saved with a warning: a single-run
baseline cannot judge a change between runs). The machine
kind is coarse and stable across identical machines: the CPU model, the usable core count and
the device (`machine_kind`), never the host name, so two CI runners of one type share a
baseline and a laptop does not silently compare with a CI runner.

    kind = machine_kind(manifest)          # "amd-epyc-7763-64-core-processor-2c-cpu"
    path = find_baseline(root, "ci", kind)  # None when none was saved for this machine kind
    base = load_baseline(path)             # a baseline file or a run folder
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness.metrics.measured import run_to_run
from harness.records.atomic import read_json, write_json
from harness.records.versioned import exact
from harness.run.folder import RunDir
from harness.run.manifest import Manifest, ManifestError, read_manifest
from harness.run.resolved import ResolvedScenario, named, setting_changes
from harness.summary.record import PointSummary, RunSummary, SummaryError, read_summary

BASELINE_VERSION = 1
BASELINES = Path("results") / "baselines"


class BaselineError(ValueError):
    """A baseline or run folder cannot be read; the message says why in one line."""


@dataclass(frozen=True)
class SavedBaseline:
    """A baseline as read back: its summary (one repeat per run and repeat saved), machine kind,
    model hash and settings (None: a file saved before they were kept), and where from."""

    summary: RunSummary
    machine_kind: str
    model_hash: str | None
    source: Path
    settings: ResolvedScenario | None = None

    @property
    def runs(self) -> int:
        """How many runs (× repeats) each point was measured in."""
        return len({p.repeat for p in self.summary.points}) if self.summary.points else 0


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


def save_baseline(runs: Sequence[Path], root: Path = BASELINES) -> Path:
    """Write `runs` (one or more run folders of one scenario) as the baseline of their scenario
    on their machine kind; return the file. `BaselineError` names what differs between them."""
    read = [read_run(run) for run in runs]
    summary, manifest = read[0]
    kind = machine_kind(manifest)
    for other, (s, m) in zip(runs[1:], read[1:], strict=True):
        problem = mismatch(SavedBaseline(summary, kind, manifest.model.hash, runs[0],
                                         manifest.scenario.resolved),
                           machine_kind(m), m.model.hash, m.scenario.resolved)
        if s.scenario != summary.scenario or problem:
            raise BaselineError(f"{other} cannot join {runs[0]} in one baseline: "
                                f"{problem or f'scenario {s.scenario!r} vs {summary.scenario!r}'}")
    merged = replace(summary, points=tuple(_as_repeats([s for s, _ in read])))
    record = {"baseline_version": BASELINE_VERSION, "scenario": summary.scenario,
              "run": summary.run, "runs": [s.run for s, _ in read], "machine_kind": kind,
              "machine": exact(manifest.machine), "device": manifest.device,
              "model_hash": manifest.model.hash, "manifest": manifest.to_json(),
              "summary": merged.to_json()}
    return write_json(baseline_path(root, summary.scenario, kind), record)


def _as_repeats(summaries: Sequence[RunSummary]) -> list[PointSummary]:
    """Every run's points, run j's repeats numbered after those of the runs before it."""
    out: list[PointSummary] = []
    offset = 0
    for summary in summaries:
        out += [replace(p, repeat=offset + p.repeat) for p in summary.points]
        offset += 1 + max((p.repeat for p in summary.points), default=-1)
    return out


def mismatch(saved: SavedBaseline, kind: str, model: str | None,
             settings: ResolvedScenario | None) -> str | None:
    """Why `saved` cannot serve a run on machine `kind` with model hash `model` and these
    resolved `settings` (workload, load, targets' options and client), or None."""
    if saved.machine_kind != kind:
        return (f"baseline from another machine kind: {saved.machine_kind} (this run: {kind}); "
                "save one here with `patternbench baseline save RUN RUN RUN`")
    if saved.model_hash != model:
        return f"baseline from another model: hash {saved.model_hash} (this run: {model})"
    if saved.settings is None or settings is None:
        return None  # a baseline or run recorded before its settings were: only the above
    changed, _ = setting_changes(exact(saved.settings), exact(settings))
    if changed:
        return f"baseline with other settings: {named(changed, '; ')} (this run vs baseline)"
    return None


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
        return SavedBaseline(summary, machine_kind(manifest), manifest.model.hash, path,
                             manifest.scenario.resolved)
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: not a readable baseline ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("baseline_version") != BASELINE_VERSION:
        raise BaselineError(f"{path}: not a patternbench baseline (baseline_version "
                            f"{BASELINE_VERSION} expected)")
    try:
        summary = RunSummary.from_json(data.get("summary"))
        manifest = Manifest.from_json(data.get("manifest"))
    except (SummaryError, ManifestError) as exc:
        raise BaselineError(f"{path}: {exc}") from None
    return SavedBaseline(summary, str(data.get("machine_kind")), data.get("model_hash"), path,
                         manifest.scenario.resolved)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


SPREAD = (("throughput", "output_tok_s"), ("ttft_ms", "p50"), ("tpot_ms", "p50"))


def spread_lines(saved: SavedBaseline) -> list[str]:
    """Per target × point, the run-to-run spread of its headline metrics: the standard deviation
    of their log across the saved runs, in percent (what a gate's prediction interval uses)."""
    out = []
    for target, point in dict.fromkeys((p.target, p.point) for p in saved.summary.points):
        parts = []
        for field, sub in SPREAD:
            noise = run_to_run(saved.summary, target, point, field, sub)
            if noise is not None:
                parts.append(f"{field}.{sub} ±{100 * noise.sd_log:.1f}%")
        if parts:
            out.append(f"{target}.{point}: " + ", ".join(parts))
    return out
