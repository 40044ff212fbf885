"""The request pool of a point: distinct prompts across points, targets and drivers unless the
scenario asks for reuse; the pool the builtin driver builds twice is built once."""

from __future__ import annotations

from typing import Any

from harness.arrivals import plan
from harness.drivers.job import LoadJob
from harness.scenario.types import LoadPoint, Workload
from harness.workload.prompts import PromptFactory
from harness.workload.request_pool import CLOSED_POOL_SIZE, POOL_SIZE, RequestPool
from tests.jobs import job_for

CLOSED = LoadPoint("c4", "closed", duration_s=1, warmup_s=0, concurrency=4, max_requests=300)
OPEN = LoadPoint("r50", "poisson", duration_s=2, warmup_s=1, rate_rps=50)


def job(prompts: PromptFactory, point: LoadPoint, target: str = "a") -> LoadJob:
    """The job `harness.run.point.load_job` builds: a fresh block of the run's prompt indices."""
    return job_for(point, prompts=prompts, seed=prompts.seed, target=target)


def pool_prompts(j: LoadJob) -> list[str]:
    return [s.prompt for s in RequestPool(j, plan(j.point, j.seed)).specs]


def test_points_and_targets_of_a_run_get_disjoint_prompts(tokenizer: Any) -> None:
    prompts = PromptFactory(tokenizer, Workload(prompt_tokens=16), seed=7)
    pools = [pool_prompts(job(prompts, point, target))
             for target in ("a", "b") for point in (CLOSED, OPEN)]
    assert len(pools[0]) == 300  # the closed loop's max_requests
    assert len(pools[1]) == len(plan(OPEN, 7) or [])  # one per arrival
    every = [prompt for pool in pools for prompt in pool]
    assert len(set(every)) == len(every)
    assert all(len(tokenizer.encode(p, add_special_tokens=False)) == 16 for p in every[::37])


def test_prompt_reuse_gives_every_point_the_same_pool(tokenizer: Any) -> None:
    prompts = PromptFactory(tokenizer, Workload(prompt_tokens=16, prompt_reuse=True), seed=7)
    first = pool_prompts(job(prompts, CLOSED))
    second = pool_prompts(job(prompts, CLOSED, "b"))
    assert first == second == [prompts.get(i).prompt for i in range(min(POOL_SIZE, 300))]


def test_a_closed_loop_without_a_cap_gets_the_closed_pool(tokenizer: Any) -> None:
    prompts = PromptFactory(tokenizer, Workload(prompt_tokens=4), seed=1)
    point = LoadPoint("c1", "closed", duration_s=1, warmup_s=0, concurrency=1)
    pool = RequestPool(job(prompts, point), None)
    assert len(pool) == CLOSED_POOL_SIZE
    assert pool.spec(CLOSED_POOL_SIZE) == pool.spec(0)  # past it, the point cycles its own


def test_building_the_same_job_twice_reuses_the_pool(tokenizer: Any) -> None:
    prompts = PromptFactory(tokenizer, Workload(prompt_tokens=16), seed=7)
    j = job(prompts, CLOSED)
    first, second = RequestPool(j, None), RequestPool(j, None)
    assert first.specs is second.specs and first.bodies is second.bodies
    assert b'"seed"' not in first.body(0)
