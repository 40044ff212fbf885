"""Load drivers: each turns a `LoadJob` into one `Sample` per request.

The runner owns the `Driver` protocol (what it needs from any load tool); concrete drivers are
listed explicitly in `DRIVERS`. A driver must stamp times on `job.clock` and keep the samples it
gathered if interrupted (raise after returning them through `DriverInterrupted`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.samples import Clock, Sample
from harness.scenario import LoadPoint, Workload
from harness.workload import PromptFactory


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
    timeout_s: float = 300.0
    api_key: str | None = None

    @property
    def warmup_end(self) -> float:
        return self.point_start + self.point.warmup_s

    @property
    def load_end(self) -> float:
        return self.point_start + self.point.warmup_s + self.point.duration_s


@dataclass
class Progress:
    """Live counters a driver updates; the runner prints them."""

    sent: int = 0
    done: int = 0
    errors: int = 0
    tokens: int = 0


ProgressHook = Callable[[Progress], None]


class DriverInterrupted(Exception):
    """Raised by a driver that was interrupted; `samples` holds what it measured until then."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        super().__init__("load interrupted")
        self.samples = list(samples)


class Driver(Protocol):
    name: str

    def run(self, job: LoadJob, progress: Progress) -> list[Sample]:
        """Drive the load point to its end and return every sample (warm-up included)."""
        ...


def get_driver(name: str) -> Driver:
    factory = DRIVERS.get(name)
    if factory is None:
        raise KeyError(f"unknown driver {name!r}; choose one of {sorted(DRIVERS)}")
    return factory()


def _builtin() -> Driver:
    from harness.drivers.builtin import BuiltinDriver

    return BuiltinDriver()


DRIVERS: dict[str, Callable[[], Driver]] = {
    "builtin": _builtin,
}
