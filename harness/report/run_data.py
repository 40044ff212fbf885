"""Reading a stored run folder into what the report renders: the typed summary, and the rest.

A run folder holds `manifest.json` (a `harness.run.manifest.Manifest`), `summary.json` (a
`harness.summary.RunSummary`) and optionally `telemetry/<target>.jsonl`. Reading is forgiving: a
missing or unreadable file, or one written by another version of patternbench, becomes an empty
value (no manifest: None) and a notice on the page, never an exception, so an interrupted run
still gets a report. Only a `run_dir` that does not exist raises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.run.folder import RunDir
from harness.run.manifest import Manifest, ManifestError, read_manifest
from harness.run.resolved import ScenarioAsRun
from harness.summary.record import (
    SCHEMA_VERSION,
    Distribution,
    PointSummary,
    RunSummary,
    SummaryError,
    TargetRun,
    read_summary,
)
from harness.telemetry.store import parse_records

JSONDict = dict[str, Any]

DIST_KEYS = tuple(f.name for f in fields(Distribution)
                  if f.name not in ("ci95", "too_few"))  # the numeric statistics
ERROR_STATUSES = ("http_error", "refused", "timeout", "truncated", "conn_error")


def empty_summary(run_id: str) -> RunSummary:
    return RunSummary(schema_version=SCHEMA_VERSION, run=run_id, scenario="", interrupted=False,
                      targets={}, points=())


@dataclass(frozen=True)
class RunData:
    """Everything the report shows about one run. `notices` are problems met while reading."""

    run_id: str
    manifest: Manifest | None  # None: missing or unreadable (a notice says why)
    summary: RunSummary
    telemetry: dict[str, list[JSONDict]] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    folder: Path | None = None  # the run folder, for its samples (None: built in memory)

    @property
    def points(self) -> tuple[PointSummary, ...]:
        return self.summary.points

    @property
    def targets(self) -> dict[str, TargetRun]:
        """Series label → its `TargetRun` (a bare one for a label seen only in points)."""
        out = dict(self.summary.targets)
        for point in self.points:
            out.setdefault(point.target, TargetRun(name=point.target_name, options={},
                                                   status="ok"))
        return out

    @property
    def scenario(self) -> ScenarioAsRun | None:
        """The scenario as the manifest recorded it (None without a manifest)."""
        return None if self.manifest is None else self.manifest.scenario

    @property
    def description(self) -> str | None:
        return None if self.scenario is None else self.scenario.description

    @property
    def scenario_name(self) -> str:
        name = (self.scenario.name if self.scenario else None) or self.summary.scenario
        return name or "(unnamed scenario)"


def load_run(run_dir: Path) -> RunData:
    """Read `run_dir`; raise FileNotFoundError only when the folder itself is missing."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    folder = RunDir(run_dir)
    notices: list[str] = []
    try:
        manifest: Manifest | None = read_manifest(run_dir)
    except ManifestError as exc:
        notices.append(f"{exc}; the page shows what the other files hold.")
        manifest = None
    try:
        summary = read_summary(folder.summary)
    except SummaryError as exc:
        notices.append(f"{exc}; the page shows what the other files hold.")
        summary = empty_summary(folder.name)
    run_id = summary.run or (manifest.run if manifest else None) or folder.name
    telemetry = _read_telemetry(folder.telemetry_dir, notices)
    return RunData(run_id, manifest, summary, telemetry, tuple(notices), run_dir)


def _read_telemetry(folder: Path, notices: list[str]) -> dict[str, list[JSONDict]]:
    """`telemetry/<target>.jsonl` → target → its records (lines that are not objects skipped)."""
    out: dict[str, list[JSONDict]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.jsonl")):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            notices.append(f"telemetry/{path.name} could not be read ({exc}).")
            continue
        records, bad = parse_records(lines)
        if bad:
            notices.append(f"telemetry/{path.name}: {bad} line(s) were not JSON objects; skipped.")
        out[path.stem] = records
    return out


# --- accessors on the typed point ------------------------------------------------------------

def stat(dist: Distribution | None, name: str) -> float | None:
    """One statistic of a distribution (`p50`, `mean`, ...), None when there is none."""
    return None if dist is None else float(getattr(dist, name))


def dist_stat(point: PointSummary, metric: str, name: str) -> float | None:
    """`point.<metric>.<name>`: e.g. `dist_stat(p, "ttft_ms", "p99")`."""
    value = getattr(point, metric)
    return stat(value, name) if isinstance(value, Distribution) or value is None else None


def load_kind(point: PointSummary) -> str:
    """'closed' for fixed concurrency, 'open' for an arrival rate."""
    if point.load.concurrency is not None:
        return "closed"
    if point.load.rate_rps is not None:
        return "open"
    return point.load.kind or "?"


def load_level(point: PointSummary) -> float | None:
    """The x value of a point: concurrency (closed loop) or rate in req/s (open loop)."""
    if point.load.concurrency is not None:
        return float(point.load.concurrency)
    return point.load.rate_rps


def load_label(point: PointSummary, with_kind: bool = True) -> str:
    """Human label of a point's load, e.g. 'c=8 (closed)' or '2.5 req/s (poisson)'."""
    load = point.load
    if load.concurrency is not None:
        text = f"c={load.concurrency:g}"
    elif load.rate_rps is not None:
        text = f"{load.rate_rps:g} req/s"
    else:
        text = point.point or "?"
    return f"{text} ({load.kind})" if load.kind and with_kind else text


def error_counts(point: PointSummary) -> dict[str, int]:
    """Non-ok request counts by status, zeros left out; `dropped` (arrivals never sent) too."""
    counts = {s: n for s in ERROR_STATUSES if (n := getattr(point.requests, s))}
    if point.dropped:
        counts["dropped"] = point.dropped  # never sent: a failure the requests do not count
    return counts


def measured_rate(point: PointSummary, value: float | None) -> float | None:
    """A throughput for display: 0 where requests were counted but none completed (an
    all-failed point), None only where nothing was measured."""
    if value is None and (point.requests.total or point.dropped):
        return 0.0
    return value


# --- tolerant accessors for the untyped parts: telemetry records and meta.json ---------------

def as_dict(value: object) -> JSONDict:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def as_float(value: object) -> float | None:
    """A finite number as float, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def is_distribution(value: object) -> bool:
    """Whether `value` looks like an encoded Distribution: a dict with count, p50 and p99."""
    return isinstance(value, dict) and {"count", "p50", "p99"} <= value.keys()
