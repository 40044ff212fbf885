"""Closed-loop ramp-up: N streams start spread over `ramp_up_s`, not in one lock-step wave."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from harness.drivers.builtin.driver import BuiltinDriver
from harness.drivers.builtin.shares import Share
from harness.drivers.job import Progress, closed_starts
from harness.drivers.k6.script import render
from harness.samples import Clock, Sample
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.scenario.types import LoadPoint
from tests.jobs import job_for


def scenario(**load: Any) -> Any:
    return parse_scenario({"targets": ["sim"], "load": {"kind": "closed", **load}})


def test_ramp_up_defaults_to_half_the_warm_up_and_can_be_set() -> None:
    (default,) = scenario(concurrency=4, warmup_s=2).points
    assert default.ramp_up_s == 1.0 and "ramp_up_s" not in default.params
    assert closed_starts(default) == [0.0, 0.25, 0.5, 0.75]
    (given,) = scenario(concurrency=5, warmup_s=2, ramp_up_s=2).points
    assert closed_starts(given) == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6])
    (none,) = scenario(concurrency=3, ramp_up_s=0).points
    assert closed_starts(none) == [0.0, 0.0, 0.0]
    assert closed_starts(LoadPoint("r2", "constant", 5, 1, rate_rps=2.0)) == []


@pytest.mark.parametrize(("load", "needle"), [
    ({"concurrency": 4, "warmup_s": 1, "ramp_up_s": 1.5}, r"^load\.ramp_up_s: must not pass "
     r"load\.warmup_s \(1\), got 1\.5: the warm-up must cover the ramp$"),
    ({"concurrency": 4, "ramp_up_s": -1}, r"^load\.ramp_up_s: must be ≥ 0, got -1$"),
    ({"concurrency": 4, "ramp_up_s": "slow"}, r"^load\.ramp_up_s: must be a number, got 'slow'$"),
])
def test_bad_ramp_ups_are_one_line_errors(load: dict[str, Any], needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle) as err:
        scenario(**load)
    assert "\n" not in str(err.value)


def test_open_loop_kinds_have_no_ramp_up_key() -> None:
    with pytest.raises(ScenarioError, match="ramp_up_s"):
        parse_scenario({"targets": ["sim"], "load": {"kind": "constant", "ramp_up_s": 1}})


def first_sends(point: LoadPoint, share: Share) -> list[tuple[int, float]]:
    """(request index, s after the point's start) of each stream's first request, from the
    builtin driver's real closed loop; a request ends once every stream has sent one."""
    clock = Clock()
    job = job_for(point, clock=clock)
    sent: list[tuple[int, float]] = []
    streams = share.part(point.concurrency or 0)

    async def main() -> None:
        all_sent = asyncio.Event()

        async def one(index: int, scheduled_at: float) -> Sample:
            sent.append((index, scheduled_at - job.point_start))
            if len(sent) == streams:
                all_sent.set()
            await all_sent.wait()
            return Sample(f"t-{index}", "t", point.name, scheduled_at, scheduled_at, "ok",
                          done_at=clock.now())

        await BuiltinDriver()._closed(job, share, one, Progress())

    asyncio.run(main())
    return sent


def test_the_builtin_closed_loop_staggers_its_streams_first_requests() -> None:
    point = LoadPoint("c4", "closed", duration_s=5, warmup_s=0.8, concurrency=4,
                      max_requests=4, params={"ramp_up_s": 0.4})
    starts = first_sends(point, Share(0, 1))
    assert [i for i, _ in starts] == [0, 1, 2, 3]
    assert [t for _, t in starts] == pytest.approx([0.0, 0.1, 0.2, 0.3], abs=0.04)
    # a second driver process runs streams 1 and 3 of the same ramp
    second = first_sends(point, Share(1, 2))
    assert [t for _, t in second] == pytest.approx([0.1, 0.3], abs=0.04)


def test_the_k6_script_sleeps_each_vu_to_its_start() -> None:
    point = LoadPoint("c4", "closed", duration_s=5, warmup_s=2, concurrency=4)
    script = render(point, url="http://x/v1/completions", bodies_path="b.json",
                    summary_path="s.json", headers={}, vus=4, timeout_s=5, stream=True)
    config = json.loads(script.split("const CFG = ", 1)[1].split(";\n", 1)[0])
    assert config["starts"] == [0.0, 0.25, 0.5, 0.75]
    assert "sleep(CFG.starts[(exec.vu.idInTest - 1) % CFG.starts.length])" in script
