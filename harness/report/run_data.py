"""Reading a stored run folder into plain data the report renders.

A run folder holds `manifest.json`, `summary.json` and optionally `telemetry/<target>.jsonl`.
Reading is forgiving: a missing or unreadable file, or a missing key, becomes an empty value
and a notice on the page, never an exception, so an interrupted run still gets a report.
Only a `run_dir` that does not exist raises.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.telemetry.store import parse_records

JSONDict = dict[str, Any]

KNOWN_SCHEMA_VERSION = 1
DIST_KEYS = ("count", "mean", "p50", "p90", "p95", "p99", "max")
ERROR_STATUSES = ("http_error", "refused", "timeout", "truncated", "conn_error")


@dataclass(frozen=True)
class RunData:
    """Everything the report shows about one run. `notices` are problems met while reading."""

    run_id: str
    manifest: JSONDict
    summary: JSONDict
    telemetry: dict[str, list[JSONDict]] = field(default_factory=dict)
    notices: tuple[str, ...] = ()

    @property
    def points(self) -> list[JSONDict]:
        return [p for p in as_list(self.summary.get("points")) if isinstance(p, dict)]

    @property
    def targets(self) -> dict[str, JSONDict]:
        """Target id → its entry in `summary.targets` (empty for targets seen only in points)."""
        out: dict[str, JSONDict] = {}
        for key, value in as_dict(self.summary.get("targets")).items():
            out[str(key)] = as_dict(value)
        for point in self.points:
            out.setdefault(point_target(point), {})
        return out

    @property
    def scenario(self) -> JSONDict:
        return as_dict(self.manifest.get("scenario"))

    @property
    def scenario_name(self) -> str:
        name = self.scenario.get("name") or self.summary.get("scenario")
        return str(name) if name not in (None, "") else "(unnamed scenario)"


def load_run(run_dir: Path) -> RunData:
    """Read `run_dir`; raise FileNotFoundError only when the folder itself is missing."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    notices: list[str] = []
    manifest = _read_json_object(run_dir / "manifest.json", notices)
    summary = _read_json_object(run_dir / "summary.json", notices)
    version = summary.get("schema_version")
    if isinstance(version, int) and version > KNOWN_SCHEMA_VERSION:
        notices.append(
            f"summary.json has schema_version {version}; this report knows version "
            f"{KNOWN_SCHEMA_VERSION} and shows keys it does not know generically."
        )
    run_id = str(summary.get("run") or manifest.get("run") or run_dir.name)
    telemetry = _read_telemetry(run_dir / "telemetry", notices)
    return RunData(run_id, manifest, summary, telemetry, tuple(notices))


def _read_json_object(path: Path, notices: list[str]) -> JSONDict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notices.append(f"{path.name} is missing; the page shows what the other files hold.")
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notices.append(f"{path.name} could not be read ({exc.__class__.__name__}: {exc}).")
        return {}
    if not isinstance(data, dict):
        notices.append(f"{path.name} does not hold a JSON object; ignored.")
        return {}
    return data


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


# --- tolerant accessors: JSON in, typed values out -------------------------------------------

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
    """Whether `value` looks like a Distribution: a dict with at least count, p50 and p99."""
    return isinstance(value, dict) and {"count", "p50", "p99"} <= value.keys()


def dist_stat(point: JSONDict, metric: str, stat: str) -> float | None:
    """`point[metric][stat]` as a float, or None when the metric is null or malformed."""
    value = point.get(metric)
    return as_float(value.get(stat)) if isinstance(value, dict) else None


def point_target(point: JSONDict) -> str:
    return str(point.get("target") or point.get("target_name") or "(unknown target)")


def load_kind(point: JSONDict) -> str:
    """'closed' for fixed concurrency, 'open' for an arrival rate, else the raw kind or '?'."""
    load = as_dict(point.get("load"))
    if as_float(load.get("concurrency")) is not None:
        return "closed"
    if as_float(load.get("rate_rps")) is not None:
        return "open"
    return str(load.get("kind") or "?")


def load_level(point: JSONDict) -> float | None:
    """The x value of a point: concurrency (closed loop) or rate in req/s (open loop)."""
    load = as_dict(point.get("load"))
    concurrency = as_float(load.get("concurrency"))
    return concurrency if concurrency is not None else as_float(load.get("rate_rps"))


def load_label(point: JSONDict, with_kind: bool = True) -> str:
    """Human label of a point's load, e.g. 'c=8 (closed)' or '2.5 req/s (poisson)'."""
    load = as_dict(point.get("load"))
    kind = str(load.get("kind") or "")
    concurrency = as_float(load.get("concurrency"))
    rate = as_float(load.get("rate_rps"))
    if concurrency is not None:
        text = f"c={concurrency:g}"
    elif rate is not None:
        text = f"{rate:g} req/s"
    else:
        text = str(point.get("point") or "?")
    return f"{text} ({kind})" if kind and with_kind else text


def error_counts(point: JSONDict) -> dict[str, int]:
    """Non-ok request counts by status, zeros dropped."""
    requests = as_dict(point.get("requests"))
    out: dict[str, int] = {}
    for status, value in requests.items():
        if status in ("ok", "total"):
            continue
        number = as_float(value)
        if number:
            out[str(status)] = int(number)
    return out
