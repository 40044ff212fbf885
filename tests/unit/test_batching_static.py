"""Request-level batching: a padded batch gives each row what a single request gives."""

from __future__ import annotations

from typing import Any

import pytest

from targets.batching.static import generate_batch
from targets.model.engine import ModelEngine
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.api import CompletionRequest, Limits
from targets.server.job import Job


def job(engine: ModelEngine, prompt: str, max_tokens: int, **kw: Any) -> Job:
    request = CompletionRequest(prompt=prompt, max_tokens=max_tokens, **kw)
    return Job.create("completions", request, engine, Limits())


def run(engine: ModelEngine, jobs: list[Job]) -> tuple[dict[int, list[int]], list[int]]:
    out: dict[int, list[int]] = {i: [] for i in range(len(jobs))}
    done: list[int] = []
    generate_batch(engine, jobs, emit=lambda i, t: out[i].append(t), done=done.append)
    return out, done


PROMPTS = ["Hello world", "The quick brown fox jumps over the lazy dog and then", "a",
           "Once upon a time in a land far away"]


@pytest.fixture(scope="module")
def tiny() -> ModelEngine:
    configure_threads(1)
    return load_engine("tiny", "cpu")


@pytest.mark.slow
@pytest.mark.parametrize("sampling", [{"temperature": 0.0}, {"temperature": 1.0, "seed": 7}])
def test_padded_batch_equals_single_requests(tiny: ModelEngine, sampling: dict[str, Any]) -> None:
    jobs = [job(tiny, p, 6 + 3 * i, **sampling) for i, p in enumerate(PROMPTS)]
    out, done = run(tiny, jobs)
    for i, j in enumerate(jobs):
        assert out[i] == list(tiny.generate(j.ids, j.params)), PROMPTS[i]
    assert sorted(done) == list(range(len(jobs))) and done == sorted(done)  # shortest first


@pytest.mark.slow
def test_cancelled_row_stops_while_the_batch_goes_on(tiny: ModelEngine) -> None:
    jobs = [job(tiny, "Hello world", 30, ignore_eos=True), job(tiny, "a", 30, ignore_eos=True)]
    out: dict[int, list[int]] = {0: [], 1: []}

    def emit(i: int, token: int) -> None:
        out[i].append(token)
        if i == 0 and len(out[0]) == 3:
            jobs[0].cancel.set()

    generate_batch(tiny, jobs, emit=emit, done=lambda i: None)
    assert len(out[0]) == 3 and len(out[1]) == 30


def test_sim_batch_rows_end_at_their_own_length() -> None:
    sim = load_engine("sim:ttft_ms=0,tpot_ms=0")
    jobs = [job(sim, "Hello world", 4), job(sim, "a", 9)]
    out, done = run(sim, jobs)
    assert [len(out[0]), len(out[1])] == [4, 9] and done == [0, 1]
    assert out[1] == list(sim.generate(jobs[1].ids, jobs[1].params))
