"""The table layer: a run's summary as a pandas DataFrame, one row per target × point × repeat.

Columns are the summary's fields flattened with dots by `pandas.json_normalize`
(`ttft_ms.p50`, `throughput.output_tok_s`, `requests.ok`, `telemetry.target.cpu_pct.mean`...),
each confidence interval split into `.lo` / `.hi` (`ttft_ms.ci95.p50.lo`), plus the run id,
the load family (`load_kind`: closed / open), its level (`level`: concurrency or req/s), and
`tok_s_per_request` (per-request decode speed, 1000 / TPOT p50). The report's per-target results
tables and chart tables, the compare stage and `patternbench export` all read this frame.

    >>> frame = points_frame(summary, run_id="20261127-173500-default-abc1234")
    >>> frame.pivot_table(index="level", columns="target", values="throughput.output_tok_s")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.records.typed_json import encode
from harness.report.run_data import load_kind, load_level
from harness.summary.record import PointSummary, RunSummary

ID_COLUMNS = ("run", "target", "target_name", "driver", "point", "repeat", "load_kind", "level")


def points_frame(summary: RunSummary, run_id: str | None = None) -> pd.DataFrame:
    """Every point of `summary` as one row (columns as the module says); empty frame with the id
    columns when the run has no point."""
    return frame_of(summary.points, run_id or summary.run)


def frame_of(points: Sequence[PointSummary], run_id: str) -> pd.DataFrame:
    if not points:
        return pd.DataFrame(columns=list(ID_COLUMNS))
    records: list[dict[str, Any]] = [encode(p) for p in points]
    flat = pd.json_normalize(records, sep=".")
    ci_columns = [c for c in flat.columns if ".ci95." in c]
    extra: dict[str, Any] = {
        "run": run_id,
        "load_kind": [load_kind(p) for p in points],
        "level": pd.array([load_level(p) for p in points], dtype="Float64"),
    }
    for column in ci_columns:
        extra[f"{column}.lo"] = flat[column].map(lambda v: _bound(v, 0))
        extra[f"{column}.hi"] = flat[column].map(lambda v: _bound(v, 1))
    if "tpot_ms.p50" in flat:
        tpot = pd.to_numeric(flat["tpot_ms.p50"], errors="coerce")
        extra["tok_s_per_request"] = 1000.0 / tpot.where(tpot > 0)
    frame = pd.concat([flat.drop(columns=ci_columns),
                       pd.DataFrame(extra, index=flat.index)], axis=1)
    rest = [c for c in frame.columns if c not in ID_COLUMNS]
    return frame[[*ID_COLUMNS, *rest]].copy()  # consolidated: later .assign calls do not warn


def _bound(value: object, i: int) -> float | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[i])
    return None


def metric(frame: pd.DataFrame, column: str) -> pd.Series:
    """A numeric column (NaN where the point has none, or where the frame lacks the column)."""
    if column not in frame:
        return pd.Series([float("nan")] * len(frame), index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def first_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of repeat 0 (the rows the charts draw: one per target × point)."""
    return frame[frame["repeat"] == 0] if "repeat" in frame else frame


def flat_for_files(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with list-valued cells (flags, too_few, token_counts_from) joined by ", ",
    and every other text column typed as string, so a CSV, Markdown or Parquet file holds it."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(_scalar).astype("string")
    return out


def _scalar(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value
