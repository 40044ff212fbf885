"""`patternbench export RUN --format csv|md|parquet`: a run's points as one table file.

The table is `harness.report.frame.points_frame` (one row per target × point × repeat, every
metric a flattened column); pandas writes it (`to_csv`, `to_markdown`, `to_parquet`).

    path = export_run(Path("results/20261127-173500-default-abc1234"), "csv")
    # → results/20261127-173500-default-abc1234/points.csv
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from harness.records.atomic import FILE_MODE, write_text
from harness.report.frame import flat_for_files, points_frame
from harness.run.folder import RunDir
from harness.summary.record import read_summary

Format = Literal["csv", "md", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "md", "parquet")


def export_run(run_dir: Path, fmt: Format, out: Path | None = None) -> Path:
    """Write the run's points table as `fmt` to `out` (default `<run_dir>/points.<fmt>`) and
    return its path. Raises SummaryError for an unreadable summary.json."""
    summary = read_summary(RunDir(run_dir).summary)
    frame = flat_for_files(points_frame(summary, run_id=summary.run or run_dir.name))
    target = out if out is not None else run_dir / f"points.{fmt}"
    if fmt == "csv":
        return write_text(target, frame.to_csv(index=False))
    if fmt == "md":
        return write_text(target, frame.to_markdown(index=False) + "\n")
    tmp = target.with_name(f".{target.name}.tmp")  # atomic, as harness.records.atomic writes text
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(tmp, index=False)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, target)
    return target
