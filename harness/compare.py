"""`patternbench compare RUN_A RUN_B [...]`: per target × point deltas between runs, with CIs.

The first run is the reference; every later run is compared with it. Points are matched by
target label and point name; each metric's change and its 95% interval come from
`harness.metrics.measured.change_between`, which must see run-to-run noise to call a change
between two runs: from repeats on both sides (Welch), repeats on one side (a prediction
interval), or, for two single runs, the spread of the saved baseline of the scenario on this
machine kind (`patternbench baseline save RUN RUN RUN`; `noise_from`). Without any of them a
cell's direction is `unknown`: a within-run interval cannot see how far the machine drifts.

A page holds many cells (targets × points × metrics), so a few would cross a 95% interval by
chance alone. Cells are called improved or regressed only when they stay significant under the
Benjamini–Hochberg procedure at a 5% false-discovery rate over the page's cells (`FDR`);
`Comparison.headline` says how many changed beyond noise. Runs of different scenarios, models or
machines are still compared, under a warning naming each difference.

    comparison = compare([load_run(Path("results/A")), load_run(Path("results/B"))])
    comparison.deltas  # DataFrame; harness.report.compare_page renders it (HTML, Markdown)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.gate.baseline import (
    BASELINES,
    BaselineError,
    find_baseline,
    load_baseline,
    machine_kind,
)
from harness.metrics.change import Change, classify, p_value
from harness.metrics.change import higher_is_better as is_higher_better
from harness.metrics.measured import (
    Measured,
    Noise,
    change_between,
    measure,
    points_of,
    run_to_run,
)
from harness.records.versioned import exact
from harness.report.frame import points_frame
from harness.report.run_data import RunData
from harness.run.resolved import named, setting_changes
from harness.summary.record import RunSummary

# (frame column, label): the metrics a compare page shows for each target × point.
METRICS = (
    ("throughput.output_tok_s", "output tok/s"),
    ("throughput.req_s", "req/s"),
    ("goodput.req_s", "goodput req/s"),
    ("ttft_ms.p50", "TTFT p50 ms"),
    ("ttft_ms.p99", "TTFT p99 ms"),
    ("tpot_ms.p50", "TPOT p50 ms"),
    ("e2e_ms.p50", "E2E p50 ms"),
    ("e2e_ms.p99", "E2E p99 ms"),
)
KEYS = ["target", "point"]


FDR = 0.05
"""The false-discovery rate the page's improved / regressed cells are controlled at."""


@dataclass(frozen=True)
class Comparison:
    """What a compare page shows: the runs, the warnings, one delta row per run pair × target ×
    point × metric (columns in `deltas_frame`), and every run's points (for the curves)."""

    runs: tuple[RunData, ...]
    warnings: tuple[str, ...]
    deltas: pd.DataFrame
    points: pd.DataFrame

    @property
    def headline(self) -> str:
        """The page's first line: how many cells changed beyond noise, and how many could not
        be judged and why."""
        d = self.deltas
        changed = int(d["direction"].isin(["improved", "regressed"]).sum())
        # a metric neither run has (goodput without an [slo]) is no cell that went unjudged
        unknown = d[(d["direction"] == "unknown") & (d["before"].notna() | d["after"].notna())]
        line = (f"{changed} of {len(d)} cells changed beyond noise (95% intervals, "
                f"Benjamini–Hochberg at {FDR:.0%} false discoveries)")
        if not unknown.empty:
            kinds = unknown["why"].fillna("").map(_reason_kind).value_counts()
            parts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
            line += f"; {len(unknown)} could not be judged ({parts})"
        return line + "."


REASON_KINDS = {"too_few": "with too few requests for their percentile",
                "run-to-run noise unknown": "without a run-to-run noise figure",
                "driver_bound": "driver-bound", "no interval": "without an interval",
                "a value or its interval reaches 0": "at or near zero",
                "missing metric": "missing on one side"}


def _reason_kind(why: str) -> str:
    """A cell's reason, grouped for the headline (`REASON_KINDS`)."""
    return next((kind for prefix, kind in REASON_KINDS.items() if why.startswith(prefix)),
                "for another reason")


def compare(runs: Sequence[RunData], noise: Mapping[str, NoiseTable] | None = None
            ) -> Comparison:
    """Each run after the first against the first; `noise`: run-to-run spread by scenario
    name (`noise_from`), for pairs of single runs."""
    frames = [points_frame(r.summary, r.run_id) for r in runs]
    table = (noise or {}).get(runs[0].scenario_name, {})
    deltas = [deltas_frame(runs[0], frames[0], run, frame, table)
              for run, frame in zip(runs[1:], frames[1:], strict=True)]
    frame = pd.concat(deltas, ignore_index=True) if deltas else _empty_deltas()
    return Comparison(tuple(runs), tuple(differences(runs)), discoveries(frame),
                      pd.concat(frames, ignore_index=True).copy())  # consolidated (see frame_of)


NoiseTable = dict[tuple[str, str, str], Noise]
"""Run-to-run spread by (target, point, metric column)."""


def noise_from(summary: RunSummary) -> NoiseTable:
    """The spread of every compared metric across a baseline's runs (its points' repeats)."""
    out: NoiseTable = {}
    for target, point in {(p.target, p.point) for p in summary.points}:
        for column, _ in METRICS:
            field, sub = column.split(".", 1)
            noise = run_to_run(summary, target, point, field, sub)
            if noise is not None:
                out[(target, point, column)] = noise
    return out


def deltas_frame(run_a: RunData, frame_a: pd.DataFrame, run_b: RunData,
                 frame_b: pd.DataFrame, noise: NoiseTable | None = None) -> pd.DataFrame:
    """One row per target × point both runs measured × metric: before, after, pct, its
    interval (pct_lo, pct_hi), basis, p (of no change), why (no judgement) and direction (before
    the false-discovery control: `discoveries`)."""
    keys = frame_a[[*KEYS, "level"]].drop_duplicates(KEYS).merge(
        frame_b[KEYS].drop_duplicates(), on=KEYS, how="inner")
    rows = []
    for key in keys.itertuples(index=False):
        target, point = str(key.target), str(key.point)
        for column, label in METRICS:
            field, sub = column.split(".", 1)
            a = measure(points_of(run_a.summary, target, point), field, sub)
            b = measure(points_of(run_b.summary, target, point), field, sub)
            change, why = change_between(a, b, same_run=False,
                                         noise=(noise or {}).get((target, point, column)))
            why = a.problem or b.problem or why
            rows.append(_row(run_a.run_id, run_b.run_id, target, point, key.level, column,
                             label, a, b, None if why else change, why))
    return pd.DataFrame(rows) if rows else _empty_deltas()


def discoveries(deltas: pd.DataFrame, fdr: float = FDR) -> pd.DataFrame:
    """`deltas` with `direction` improved / regressed only for the cells significant under
    Benjamini–Hochberg at `fdr` over every judged cell; the other judged cells unchanged."""
    out = deltas.copy()
    judged = out["p"].notna()
    p = out.loc[judged, "p"].astype(float).sort_values()
    m = len(p)
    passing = [rank for rank, value in enumerate(p, start=1) if value <= fdr * rank / m]
    cut = max(passing, default=0)
    significant = set(p.index[:cut])
    for i in out.index[judged]:
        if i not in significant:
            out.loc[i, "direction"] = "unchanged"
    return out


def _row(run_a: str, run_b: str, target: str, point: str, level: object, column: str,
         label: str, a: Measured, b: Measured, change: Change | None,
         why: str | None) -> dict[str, object]:
    """A cell: the change is shown even where it cannot be judged (`why`), without interval."""
    interval = change.pct_interval if change is not None else None
    direction = "unknown" if change is None else classify(change, is_higher_better(column))
    pct = (100 * (b.value / a.value - 1) if a.value and b.value is not None else None)
    return {"run_a": run_a, "run_b": run_b, "target": target, "point": point, "level": level,
            "metric": column, "label": label, "before": a.value, "after": b.value,
            "pct": change.pct if change is not None and change.before else pct,
            "pct_lo": None if interval is None else interval[0],
            "pct_hi": None if interval is None else interval[1],
            "basis": "none" if change is None else change.basis,
            "p": None if change is None or direction == "unknown" else p_value(change),
            "why": why, "direction": direction}


def _empty_deltas() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_a", "run_b", *KEYS, "level", "metric", "label", "before",
                                 "after", "pct", "pct_lo", "pct_hi", "basis", "p", "why",
                                 "direction"])


# --- what differs between the runs -----------------------------------------------------------

def differences(runs: Sequence[RunData]) -> list[str]:
    """One warning per way a later run differs from the first: scenario (name, or which of its
    settings), model (spec or hash), machine (device, CPU, cores, memory, host)."""
    first = runs[0]
    out: list[str] = []
    for run in runs[1:]:
        pair = f"{run.run_id} vs {first.run_id}"
        if run.scenario_name != first.scenario_name:
            out.append(f"Different scenarios ({pair}): {run.scenario_name!r} vs "
                       f"{first.scenario_name!r}.")
        else:
            out += _settings_warning(first, run, pair)
        out += _model_warning(first, run, pair) + _machine_warning(first, run, pair)
    return out


def scenario_hash(run: RunData) -> str:
    """A short hash of the resolved scenario (its settings, sorted), to tell two apart."""
    text = json.dumps(_scenario_json(run), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _settings_warning(a: RunData, b: RunData, pair: str) -> list[str]:
    """The settings of one scenario that differ between two runs (the resolved scenario, every
    default filled in, when both manifests have it); settings only the later run records were
    added by a newer patternbench with their defaults, and are named apart from changes."""
    resolved_a = a.scenario.resolved if a.scenario else None
    resolved_b = b.scenario.resolved if b.scenario else None
    if resolved_a is not None and resolved_b is not None:
        changed, added = setting_changes(exact(resolved_a), exact(resolved_b))
    else:
        changed, added = setting_changes(_scenario_json(a), _scenario_json(b))
    out = []
    if changed:
        out.append(f"Scenario {b.scenario_name!r} has different settings ({pair}): "
                   + named(changed, "; ") + f" (scenario hash {scenario_hash(b)} vs "
                   f"{scenario_hash(a)}).")
    if added:
        out.append(f"{b.run_id} records settings {a.run_id} does not, added by a newer "
                   f"patternbench at their defaults: {named(added, ', ')}.")
    return out


def _scenario_json(run: RunData) -> dict[str, object]:
    """The run's scenario as its manifest holds it ({} without a manifest)."""
    return {} if run.scenario is None else run.scenario.to_json()


def _model_warning(a: RunData, b: RunData, pair: str) -> list[str]:
    spec_a, spec_b = (r.manifest.model.spec if r.manifest else None for r in (a, b))
    hash_a, hash_b = (r.manifest.model.hash if r.manifest else None for r in (a, b))
    parts = [f"{key} {vb} vs {va}" for key, va, vb in (("spec", spec_a, spec_b),
                                                       ("hash", hash_a, hash_b)) if va != vb]
    return [f"Different models ({pair}): " + ", ".join(parts) + "."] if parts else []


def _machine_warning(a: RunData, b: RunData, pair: str) -> list[str]:
    facts_a, facts_b = _machine_facts(a), _machine_facts(b)
    parts = [f"{key} {facts_b[key]} vs {facts_a[key]}" for key in facts_a
             if facts_a[key] != facts_b[key]]
    return [f"Different machines ({pair}): " + ", ".join(parts) + "."] if parts else []


def _machine_facts(run: RunData) -> dict[str, object]:
    """What tells two machines apart in a warning, device first (None without a manifest)."""
    m = run.manifest
    if m is None:
        return dict.fromkeys(("device", "cpu", "cores", "memory_gb", "hostname"))
    return {"device": m.device, "cpu": m.machine.cpu, "cores": m.machine.cores,
            "memory_gb": m.machine.memory_gb, "hostname": m.machine.hostname}


def compare_dir_name(run_ids: Sequence[str]) -> str:
    """The folder of a compare page under the reports root: `compare-<a>-vs-<b>`."""
    return "compare-" + "-vs-".join(run_ids)


def saved_noise(runs: Sequence[RunData], root: Path = BASELINES) -> dict[str, NoiseTable]:
    """The run-to-run spread of the reference run's scenario on its machine kind, from the
    saved baseline (when it holds 2 or more runs): {scenario name: NoiseTable}; {} without."""
    ref = runs[0]
    if ref.manifest is None:
        return {}
    path = find_baseline(root, ref.scenario_name, machine_kind(ref.manifest))
    if path is None:
        return {}
    try:
        saved = load_baseline(path)
    except BaselineError:
        return {}
    return {ref.scenario_name: noise_from(saved.summary)}
