"""Load drivers: each turns a `LoadJob` into one `Sample` per request.

The runner owns the `Driver` protocol (what it needs from any load tool); concrete drivers are
listed explicitly in `DRIVERS`: `builtin` (asyncio + aiohttp), `k6` and `locust` (the real tools,
run as subprocesses). What a driver is given and must hand back (`LoadJob`, `Progress`,
`DriverInterrupted`) is in `job`; `request_pool` builds the prompts every driver sends, before
the load starts. Each driver's own modules sit in its package (`builtin/`, `k6/`, `locust/`).
docs/drivers.md is the user's guide.

Adding a driver: a class with a `name` and `run(job, progress) -> list[Sample]`, and a factory
in `DRIVERS` that imports it when asked for (so `patternbench list` loads no driver):

    def _mytool() -> Driver:
        from harness.drivers.mytool.driver import MyToolDriver

        return MyToolDriver()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from harness.drivers.job import LoadJob, Progress
from harness.samples import Sample


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
    from harness.drivers.builtin.driver import BuiltinDriver

    return BuiltinDriver()


def _k6() -> Driver:
    from harness.drivers.k6.driver import K6Driver

    return K6Driver()


def _locust() -> Driver:
    from harness.drivers.locust.driver import LocustDriver

    return LocustDriver()


DRIVERS: dict[str, Callable[[], Driver]] = {
    "builtin": _builtin,
    "k6": _k6,
    "locust": _locust,
}
