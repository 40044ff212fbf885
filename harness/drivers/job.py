"""What a driver is given and what it hands back: `LoadJob` in; `Progress` and samples out.

A driver must stamp every time on `job.clock` (seconds since the run's origin), report in
`progress` what the runner must store with the point (`started_at`, `flags`, `stats`), and keep
the samples it gathered if interrupted: it raises `DriverInterrupted` carrying them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.samples import Clock, Sample
from harness.scenario import LoadPoint, Workload
from harness.workload import PromptFactory

MAX_AUTO_CONNECTIONS = 1024  # `connections = 0` sizes an open-loop point to its schedule, to this


@dataclass(frozen=True)
class LoadJob:
    """One load point against one target: everything a driver needs, nothing from the CLI."""

    target: str  # label used in samples and reports
    base_url: str  # e.g. http://127.0.0.1:8123
    model_name: str  # the `model` field sent in request bodies
    point: LoadPoint
    workload: Workload
    prompts: PromptFactory
    clock: Clock
    point_start: float  # run-clock time at which this point's load starts
    seed: int
    timeout_s: float = 300.0  # a whole request, send to done
    api_key: str | None = None
    connect_timeout_s: float = 10.0  # TCP connect
    first_token_timeout_s: float = 120.0  # send to first token (or first byte without streaming)
    between_tokens_timeout_s: float = 60.0  # any later gap between stream reads
    connections: int = 0  # connection (k6: VU, locust: user) cap; 0 = sized to the load
    processes: int = 1  # builtin: driver processes; locust: workers (1 = local runner)
    work_dir: Path | None = None  # where k6/locust keep their scripts and raw output

    @property
    def warmup_end(self) -> float:
        return self.point_start + self.point.warmup_s

    @property
    def load_end(self) -> float:
        return self.point_start + self.point.warmup_s + self.point.duration_s


@dataclass
class Progress:
    """Live counters a driver updates (the runner prints them), and what the driver tells the
    runner about its own run, stored with the point in summary.json.

    `started_at`: run-clock time the load really began, when a driver had to boot a tool first
    (None = `job.point_start`); warm-up is counted from it. `flags`: point flags such as
    `no_token_timing`. `stats`: the tool's own counters (`dropped_iterations`, ...).
    """

    sent: int = 0
    done: int = 0
    errors: int = 0
    tokens: int = 0
    started_at: float | None = None
    flags: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


class DriverInterrupted(Exception):
    """Raised by a driver that was interrupted; `samples` holds what it measured until then."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        super().__init__("load interrupted")
        self.samples = list(samples)
