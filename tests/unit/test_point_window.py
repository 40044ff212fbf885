"""The measured window a point hands to `summarize`: [warm-up end, load end] on the run clock,
shifted when the driver started late, stretched while `min_requests` kept the load going."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.drivers.job import Progress
from harness.run.point import PointWatch
from harness.samples import Sample
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint
from tests.jobs import job_for

POINT = LoadPoint("c4", "closed", duration_s=4, warmup_s=1, concurrency=4)


def watch(tmp_path: Path, point: LoadPoint = POINT) -> PointWatch:
    job = job_for(point, client=ClientSettings(probe_interval_s=0), point_start=10.0)
    return PointWatch(job, tmp_path / "p.jsonl")


def sent(times: list[float]) -> list[Sample]:
    return [Sample(request_id=str(i), target="t", point="c4", scheduled_at=t, sent_at=t,
                   status="ok", done_at=t + 0.1) for i, t in enumerate(times)]


def test_the_window_is_the_load_span_shifted_by_a_late_start(tmp_path: Path) -> None:
    w = watch(tmp_path)
    assert (w.warmup_end(Progress()), w.load_end(Progress(), [])) == (11.0, 15.0)
    late = Progress(started_at=12.5)  # k6 or locust booted for 2.5 s
    assert (w.warmup_end(late), w.load_end(late, [])) == (13.5, 17.5)


def test_min_requests_stretches_the_window_to_the_send_that_reached_it(tmp_path: Path) -> None:
    w = watch(tmp_path, replace(POINT, min_requests=20, max_duration_s=10.0))
    slow = sent([10.5] + [11.0 + 0.3 * i for i in range(25)])  # the 20th after warm-up: 16.7
    assert w.load_end(Progress(), slow) == pytest.approx(16.7)
    fast = sent([11.0 + 0.1 * i for i in range(25)])  # 20 sent by 12.9: the load ran to 15
    assert w.load_end(Progress(), fast) == 15.0
    short = sent([11.0 + 0.3 * i for i in range(10)])  # never reached: max_duration_s
    assert w.load_end(Progress(), short) == 21.0
