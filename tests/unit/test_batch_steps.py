"""A static batch as steps (what Ray Serve's and LitServe's batch handlers yield): each row gets
what a single request gives, ended by END, and a consumer that stops early cancels every row."""

from __future__ import annotations

import asyncio

import pytest

from targets.batch_steps import END, async_batch_steps, batch_steps
from targets.model.engine import ModelEngine
from targets.model.load import load_engine
from targets.server.api import CompletionRequest, Limits
from targets.server.job import Job

SIM = "sim:ttft_ms=1,tpot_ms=1"


def job(engine: ModelEngine, prompt: str, max_tokens: int) -> Job:
    request = CompletionRequest(prompt=prompt, max_tokens=max_tokens, ignore_eos=True)
    return Job.create("completions", request, engine, Limits())


def rows(steps: list[list[list[int]]], size: int) -> list[list[int]]:
    """Each row's tokens over all steps, END included, checking nothing follows an END."""
    out: list[list[int]] = [[] for _ in range(size)]
    for step in steps:
        assert len(step) == size
        for i, tokens in enumerate(step):
            assert END not in out[i] or not tokens, f"row {i} got tokens after its END"
            out[i] += tokens
    return out


@pytest.fixture(scope="module")
def sim() -> ModelEngine:
    return load_engine(SIM, "cpu")


def test_rows_are_single_requests_ended_by_end(sim: ModelEngine) -> None:
    jobs = [job(sim, "Hello world", 3), job(sim, "The quick brown fox", 7)]
    got = rows(list(batch_steps(sim, jobs)), 2)
    for j, row in zip(jobs, got, strict=True):
        assert row == [*sim.generate(j.ids, j.params), END]


def test_async_steps_give_the_same_rows(sim: ModelEngine) -> None:
    jobs = [job(sim, "Hello world", 5), job(sim, "a", 2)]

    async def collect() -> list[list[list[int]]]:
        return [step async for step in async_batch_steps(sim, jobs)]

    got = rows(asyncio.run(collect()), 2)
    assert got == [[*sim.generate(j.ids, j.params), END] for j in jobs]


def test_a_consumer_that_stops_cancels_every_row(sim: ModelEngine) -> None:
    jobs = [job(sim, "Hello world", 500), job(sim, "a", 500)]
    steps = batch_steps(sim, jobs)
    next(steps)
    steps.close()
    assert all(j.cancel.is_set() for j in jobs)
