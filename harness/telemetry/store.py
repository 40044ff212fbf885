"""Telemetry records on disk: one JSON object per line, written atomically.

A record is a plain dict with at least `kind` (what sampled it) and `t` (seconds on the run's
clock, `harness.samples.Clock`). The kinds and their fields are listed in
`harness.telemetry`'s docstring. `results/<run>/telemetry/<target>.jsonl` holds every record of
one target, all load points, in time order; the runner rewrites it after each point.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.records.atomic import write_text

Record = dict[str, Any]


def write_records(path: Path, records: Iterable[Record]) -> None:
    """Write `records` as JSONL atomically: a temp file in the same folder, then rename."""
    write_text(path, (json.dumps(record, separators=(",", ":")) + "\n" for record in records))


def parse_records(lines: Iterable[str]) -> tuple[list[Record], int]:
    """The JSON objects among `lines`, in order, and how many non-blank lines were not one (a
    torn last line, say)."""
    out: list[Record] = []
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict):
            out.append(record)
        else:
            bad += 1
    return out, bad


def read_records(path: Path) -> list[Record]:
    """Every JSON object in `path`, one per line; a missing file or a torn last line (the
    collector was killed mid-write) yields what could be read, never an exception."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return parse_records(lines)[0]


def by_time(records: Iterable[Record]) -> list[Record]:
    """Records sorted by `t` (stable; records without a number `t` go last)."""
    def key(record: Record) -> tuple[int, float]:
        t = record.get("t")
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            return (0, float(t))
        return (1, 0.0)

    return sorted(records, key=key)


def append_records(path: Path, records: Iterable[Record]) -> None:
    """Add `records` to the JSONL file `path` by rewriting it atomically (old records first), so
    the file is complete after every load point even if the run stops during the next."""
    write_records(path, [*read_records(path), *records])
