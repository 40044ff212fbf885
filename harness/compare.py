"""`patternbench compare RUN_A RUN_B [...]`: per target × point deltas between runs, with CIs.

The first run is the reference; every later run is compared with it. Points are matched by
target label and point name (a pandas merge of the runs' point frames); each metric's change
and its 95% interval come from `harness.metrics.change` (percentiles: order-statistic intervals;
throughput: Poisson counts; with ≥ 2 repeats on both sides: Welch over the repeats), and
`classify` marks it improved / regressed / unchanged / unknown. Runs of different scenarios,
models or machines are still compared, under a warning naming each difference.

    comparison = compare([load_run(Path("results/A")), load_run(Path("results/B"))])
    comparison.deltas  # DataFrame; harness.report.compare_page renders it (HTML, Markdown)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from harness.metrics.change import Change, classify, count_change, quantile_change, repeats_change
from harness.metrics.change import higher_is_better as is_higher_better
from harness.records.versioned import exact
from harness.report.frame import metric, points_frame
from harness.report.run_data import RunData
from harness.summary.record import PointSummary

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


@dataclass(frozen=True)
class Comparison:
    """What a compare page shows: the runs, the warnings, one delta row per run pair × target ×
    point × metric (columns in `deltas_frame`), and every run's points (for the curves)."""

    runs: tuple[RunData, ...]
    warnings: tuple[str, ...]
    deltas: pd.DataFrame
    points: pd.DataFrame


def compare(runs: Sequence[RunData]) -> Comparison:
    """Each run after the first against the first."""
    frames = [points_frame(r.summary, r.run_id) for r in runs]
    deltas = [deltas_frame(runs[0], frames[0], run, frame)
              for run, frame in zip(runs[1:], frames[1:], strict=True)]
    return Comparison(tuple(runs), tuple(differences(runs)),
                      pd.concat(deltas, ignore_index=True) if deltas else _empty_deltas(),
                      pd.concat(frames, ignore_index=True).copy())  # consolidated (see frame_of)


def deltas_frame(run_a: RunData, frame_a: pd.DataFrame, run_b: RunData,
                 frame_b: pd.DataFrame) -> pd.DataFrame:
    """One row per target × point both runs measured × metric: before, after, pct, its
    interval (pct_lo, pct_hi), basis and direction."""
    keys = frame_a[[*KEYS, "level"]].drop_duplicates(KEYS).merge(
        frame_b[KEYS].drop_duplicates(), on=KEYS, how="inner")
    rows = []
    for key in keys.itertuples(index=False):
        target, point = str(key.target), str(key.point)
        for column, label in METRICS:
            change = point_change(run_a, frame_a, run_b, frame_b, (target, point), column)
            rows.append(_row(run_a.run_id, run_b.run_id, target, point, key.level, column,
                             label, change))
    return pd.DataFrame(rows) if rows else _empty_deltas()


def point_change(run_a: RunData, frame_a: pd.DataFrame, run_b: RunData, frame_b: pd.DataFrame,
                 key: tuple[str, str], column: str) -> Change | None:
    """The change of `column` at one target × point: over repeats when both sides have ≥ 2,
    else between the first repeats' distributions or counts."""
    values_a, values_b = _repeat_values(frame_a, key, column), _repeat_values(frame_b, key, column)
    if len(values_a) >= 2 and len(values_b) >= 2:
        return repeats_change(values_a, values_b)
    a, b = _first_point(run_a, key), _first_point(run_b, key)
    if a is None or b is None:
        return None
    group, stat = column.split(".", 1)
    if group in ("ttft_ms", "tpot_ms", "e2e_ms"):
        dist_a, dist_b = getattr(a, group), getattr(b, group)
        return None if dist_a is None or dist_b is None else quantile_change(dist_a, dist_b, stat)
    if group == "goodput":
        if a.goodput is None or b.goodput is None:
            return None
        return count_change(a.goodput.req_s, a.goodput.good_requests,
                            b.goodput.req_s, b.goodput.good_requests)
    return count_change(getattr(a.throughput, stat), a.requests.ok,
                        getattr(b.throughput, stat), b.requests.ok)


def _repeat_values(frame: pd.DataFrame, key: tuple[str, str], column: str) -> list[float]:
    rows = frame[(frame["target"] == key[0]) & (frame["point"] == key[1])]
    return [float(v) for v in metric(rows, column).dropna()]


def _first_point(run: RunData, key: tuple[str, str]) -> PointSummary | None:
    matches = [p for p in run.points if (p.target, p.point) == key]
    return min(matches, key=lambda p: p.repeat) if matches else None


def _row(run_a: str, run_b: str, target: str, point: str, level: object, column: str,
         label: str, change: Change | None) -> dict[str, object]:
    interval = change.pct_interval if change is not None else None
    direction = "unknown" if change is None else classify(change, is_higher_better(column))
    return {"run_a": run_a, "run_b": run_b, "target": target, "point": point, "level": level,
            "metric": column, "label": label,
            "before": None if change is None else change.before,
            "after": None if change is None else change.after,
            "pct": None if change is None or not change.before else change.pct,
            "pct_lo": None if interval is None else interval[0],
            "pct_hi": None if interval is None else interval[1],
            "basis": "none" if change is None else change.basis, "direction": direction}


def _empty_deltas() -> pd.DataFrame:
    return pd.DataFrame(columns=["run_a", "run_b", *KEYS, "level", "metric", "label", "before",
                                 "after", "pct", "pct_lo", "pct_hi", "basis", "direction"])


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


SETTINGS_SHOWN = 4
"""Scenario settings named in a warning; the rest are counted."""


def _settings_warning(a: RunData, b: RunData, pair: str) -> list[str]:
    """The settings of one scenario that differ between two runs (the resolved scenario, every
    default filled in, when both manifests have it); settings only the later run records were
    added by a newer patternbench with their defaults, and are named apart from changes."""
    resolved_a = a.scenario.resolved if a.scenario else None
    resolved_b = b.scenario.resolved if b.scenario else None
    changed: list[str] = []
    added: list[str] = []
    if resolved_a is not None and resolved_b is not None:
        _walk(exact(resolved_a), exact(resolved_b), "", changed, added)
    else:
        _walk(_scenario_json(a), _scenario_json(b), "", changed, added)
    out = []
    if changed:
        out.append(f"Scenario {b.scenario_name!r} has different settings ({pair}): "
                   + _named(changed, "; ") + f" (scenario hash {scenario_hash(b)} vs "
                   f"{scenario_hash(a)}).")
    if added:
        out.append(f"{b.run_id} records settings {a.run_id} does not, added by a newer "
                   f"patternbench at their defaults: {_named(added, ', ')}.")
    return out


def _walk(a: object, b: object, path: str, changed: list[str], added: list[str]) -> None:
    """Collect each leaf that differs (dotted path, later run's value first)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if path or key != "description":
                _walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key),
                      changed, added)
    elif isinstance(a, list) and isinstance(b, list) and _records(a, b):  # [[targets]]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{i}]", changed, added)
    elif a is None and b is not None:
        added.append(path)
    elif a != b:
        changed.append(f"{path} {_short(b)} vs {_short(a)}")


def _records(a: list[object], b: list[object]) -> bool:
    """Two lists of tables of one length ([[targets]]): compared entry by entry."""
    return len(a) == len(b) and all(isinstance(x, dict) for x in [*a, *b])


def _named(items: list[str], sep: str) -> str:
    more = len(items) - SETTINGS_SHOWN
    return sep.join(items[:SETTINGS_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _short(value: object, width: int = 40) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


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
