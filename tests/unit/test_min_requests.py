"""`min_requests` / `max_duration_s`: a point runs past `duration_s` until it has sent its
minimum after warm-up, never past `max_duration_s`; the builtin driver's real loops."""

from __future__ import annotations

import asyncio

import pytest

from harness.arrivals import plan
from harness.drivers.builtin.driver import BuiltinDriver
from harness.drivers.builtin.shares import Share
from harness.drivers.job import Progress
from harness.samples import Sample
from harness.scenario.types import LoadPoint
from tests.jobs import job_for


def closed_run(point: LoadPoint, service_s: float) -> tuple[int, float]:
    """(requests sent after warm-up, s the load ran) of the builtin closed loop, each request
    taking `service_s`."""
    job = job_for(point)
    sent: list[float] = []

    async def one(index: int, scheduled_at: float) -> Sample:
        sent.append(scheduled_at)
        await asyncio.sleep(service_s)
        return Sample(f"t-{index}", "t", point.name, scheduled_at, scheduled_at, "ok",
                      done_at=job.clock.now())

    asyncio.run(BuiltinDriver()._closed(job, Share(0, 1), one, Progress()))
    return sum(t >= job.warmup_end for t in sent), job.clock.now() - job.point_start


def test_a_closed_loop_runs_past_its_duration_until_it_has_min_requests() -> None:
    point = LoadPoint("c2", "closed", duration_s=0.1, warmup_s=0.05, concurrency=2,
                      params={"ramp_up_s": 0}, min_requests=24, max_duration_s=5)
    measured, ran = closed_run(point, 0.02)  # 2 streams × 0.1 s / 0.02 s ≈ 10 in duration_s
    assert measured >= 24 and ran < 2


def test_a_closed_loop_stops_at_max_duration_without_them() -> None:
    point = LoadPoint("c1", "closed", duration_s=0.1, warmup_s=0.0, concurrency=1,
                      params={"ramp_up_s": 0}, min_requests=10_000, max_duration_s=0.3)
    measured, ran = closed_run(point, 0.02)
    assert measured < 10_000 and 0.3 <= ran < 0.6


def test_without_min_requests_the_loop_ends_at_duration() -> None:
    point = LoadPoint("c1", "closed", duration_s=0.1, warmup_s=0.0, concurrency=1,
                      params={"ramp_up_s": 0})
    _, ran = closed_run(point, 0.02)
    assert ran < 0.2


def test_an_open_loop_schedule_is_extended_to_min_requests_after_warm_up() -> None:
    point = LoadPoint("r10", "constant", duration_s=1, warmup_s=1, rate_rps=10,
                      min_requests=25, max_duration_s=10)
    arrivals = job_for(point).arrivals()
    assert arrivals is not None
    measured = [a for a in arrivals if a.offset_s >= 1]
    assert len(measured) == 25 and measured[-1].offset_s == pytest.approx(3.4)
    assert len(arrivals) - 25 == 10  # the warm-up's arrivals, unchanged
    capped = job_for(LoadPoint("r10", "constant", 1, 1, rate_rps=10, min_requests=500,
                                max_duration_s=2)).arrivals()
    assert capped is not None and max(a.offset_s for a in capped) < 3  # warm-up + 2 s
    plain = LoadPoint("r10", "constant", 1, 1, rate_rps=10)
    assert job_for(plain).arrivals() == plan(plain, 1)


def test_load_over_rule() -> None:
    job = job_for(LoadPoint("c1", "closed", duration_s=2, warmup_s=1, concurrency=1,
                             min_requests=5, max_duration_s=4))
    start = job.point_start
    assert not job.load_over(start + 3.5, 4)  # past duration, short of 5
    assert job.load_over(start + 3.5, 5)
    assert job.hard_end == pytest.approx(start + 5.0)  # warm-up + max_duration_s
    assert job.load_over(job.hard_end, 0)
    assert not job.load_over(start + 2.9, 99)
