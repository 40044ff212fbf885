"""Typed summary records for tests that feed a report, a calibration or a gate.

A point starts as what `summarize` gives for no samples (every metric None, nothing counted)
and takes the fields a test sets, so a fixture has exactly the shape the runner writes.
"""

from __future__ import annotations

import json
import random
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import jsonschema

from harness.metrics.requests import summarize
from harness.records.atomic import write_json
from harness.samples import Sample
from harness.summary.record import (
    SCHEMA_VERSION,
    Load,
    PointMetrics,
    PointSummary,
    RunSummary,
    TargetRun,
    read_summary,
)

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "summary.schema.json"


def read_checked(run_dir: Path) -> RunSummary:
    """A real run's summary.json, validated against the committed JSON schema, then read
    through the typed records (as the report and the gate read it)."""
    path = run_dir / "summary.json"
    jsonschema.validate(json.loads(path.read_text()), json.loads(SCHEMA.read_text()))
    return read_summary(path)


def typed_point(target: str, point: str, load: Load, **fields: Any) -> PointSummary:
    """A summary point of `target` at `load`, with `fields` (any `PointSummary` field) set."""
    base = PointSummary.of(summarize([]), target=target, target_name=target, driver="builtin",
                           point=point, load=load, stream=True, flags=(),
                           max_dispatch_lag_ms=50.0)
    return replace(base, **fields)


def write_summary(run_dir: Path, points: list[PointSummary],
                  targets: dict[str, TargetRun] | None = None) -> Path:
    """`run_dir/summary.json` holding `points` (targets: each point's, all started)."""
    targets = targets or {p.target: TargetRun(name=p.target_name, options={}, status="ok")
                          for p in points}
    summary = RunSummary(schema_version=SCHEMA_VERSION, run=run_dir.name, scenario="test",
                         interrupted=False, targets=targets, points=tuple(points))
    return write_json(run_dir / "summary.json", summary.to_json())


def streamed_point(target: str, point: str, *, concurrency: int, ttft_ms: float,
                   tpot_ms: float, requests: int, tokens: int = 32, seed: int = 0,
                   jitter: float = 0.08) -> PointSummary:
    """A closed-loop streaming point as the builtin driver records it: `concurrency` streams
    send back to back until `requests` completed, each with a log-normal TTFT around `ttft_ms`
    and gaps around `tpot_ms` (relative spread `jitter`), summarized by `summarize`."""
    rng = random.Random(seed)
    free_at = [0.0] * concurrency
    samples = []
    for i in range(requests):
        slot = min(range(concurrency), key=free_at.__getitem__)
        sent = free_at[slot]
        first = sent + ttft_ms / 1000 * rng.lognormvariate(0, jitter)
        times = [first]
        for _ in range(tokens - 1):
            times.append(times[-1] + tpot_ms / 1000 * rng.lognormvariate(0, jitter))
        samples.append(Sample(request_id=f"{target}-{point}-{i}", target=target, point=point,
                              scheduled_at=sent, sent_at=sent, status="ok",
                              first_byte_at=first, first_token_at=first,
                              token_times=tuple(times), done_at=times[-1], prompt_tokens=64,
                              output_tokens=tokens, tokens_source="usage"))
        free_at[slot] = times[-1]
    metrics = summarize(samples, warmup_end=0.0, load_end=max(free_at))
    return typed_point(target, point, Load(kind="closed", concurrency=concurrency),
                       **{f.name: getattr(metrics, f.name) for f in fields(PointMetrics)})


def run_summary(points: list[PointSummary], run: str = "run", scenario: str = "test"
                ) -> RunSummary:
    """A RunSummary of `points`, every target started."""
    targets = {p.target: TargetRun(name=p.target_name, options={}, status="ok")
               for p in points}
    return RunSummary(schema_version=SCHEMA_VERSION, run=run, scenario=scenario,
                      interrupted=False, targets=targets, points=tuple(points))


def rates(record: dict[str, Any]) -> dict[str, Any]:
    """A throughput or goodput record (as JSON) without its intervals (`ci95`, `sections`),
    for tests about the figures themselves (tests/unit/test_sections.py checks the intervals)."""
    return {k: v for k, v in record.items() if k not in ("ci95", "sections")}
