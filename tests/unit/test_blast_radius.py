"""A failure stays local: one sequence's failure ends that sequence only and the batch goes on;
an engine loop that dies says so (`/health` 503) and every request fails fast, OpenAI-shaped."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator

import pytest

from targets.batching.scheduler import (
    BatcherDead,
    ContinuousBatcher,
    Sequence,
    SequenceFailed,
)
from targets.batching.sim import SimBatchModel
from targets.model.engine import GenParams
from targets.model.load import load_engine
from targets.model.spec import SimParams
from targets.server import asgi
from targets.server.config import ServeConfig
from targets.server.job import Job
from targets.server.stats import Stats
from tests.unit.test_batching import Recorder
from tests.unit.test_flow import AsgiClient, sse_payloads
from tests.waiting import wait_for

FAST = SimParams(ttft_ms=0.0, tpot_ms=0.0)
SLOW = SimParams(ttft_ms=0.0, tpot_ms=1.0)
MODEL = "sim:ttft_ms=0,tpot_ms=1"
NAN = "probability tensor contains either inf, nan or element < 0"


class OneBadRow(SimBatchModel):
    """Sampling fails for the sequence keyed "bad" at its third step, as a NaN row would."""

    def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
        for seq in decode:
            if seq.key == "bad" and seq.produced == 2:
                raise SequenceFailed(seq, RuntimeError(NAN))
        return super().step(decode, chunks)


def test_one_failing_sequence_fails_alone_and_the_batch_goes_on() -> None:
    batcher = ContinuousBatcher(OneBadRow(FAST, max_batch=8))
    sink = Recorder(batcher)
    keys = ["a", "bad", "b", "c"]
    for key in keys:
        batcher.submit([1, 2, 3], GenParams(max_tokens=6, ignore_eos=True), threading.Event(),
                       sink, key)
    batcher.start()
    sink.wait(len(keys))
    batcher.stop()
    bad = sink.items["bad"]
    assert bad[:-1] == sink.items["a"][:2] and isinstance(bad[-1], RuntimeError)
    assert NAN in str(bad[-1])
    for key in ("a", "b", "c"):  # the others: all their tokens, the same as without "bad"
        assert len(sink.tokens(key)) == 6
    assert sink.tokens("a") == sink.tokens("b") == sink.tokens("c")
    assert batcher.dead is None


def test_a_sequence_that_cannot_join_fails_alone() -> None:
    class UnseedableJoin(SimBatchModel):
        def join(self, seq: Sequence) -> None:
            if seq.params.seed == 2**64:  # what torch's manual_seed refuses
                raise RuntimeError("Overflow when unpacking long")
            super().join(seq)

    batcher = ContinuousBatcher(UnseedableJoin(FAST, max_batch=4))
    sink = Recorder(batcher)
    batcher.submit([1], GenParams(max_tokens=3, temperature=1.0, seed=2**64),
                   threading.Event(), sink, "bad")
    batcher.submit([1], GenParams(max_tokens=3, ignore_eos=True), threading.Event(), sink, "ok")
    batcher.start()
    sink.wait(2)
    batcher.stop()
    assert isinstance(sink.items["bad"][-1], RuntimeError)
    assert len(sink.tokens("ok")) == 3


class Dying(SimBatchModel):
    """A device lost mid-run: the step fails, and so does the reset after it."""

    def __init__(self, params: SimParams, max_batch: int) -> None:
        super().__init__(params, max_batch)
        self.die = threading.Event()

    def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
        if self.die.is_set():
            raise RuntimeError("CUDA error: device lost")
        return super().step(decode, chunks)

    def reset(self) -> None:
        raise RuntimeError("reset failed: device lost")


def test_a_dead_loop_fails_in_flight_and_later_requests_and_says_why() -> None:
    model = Dying(SLOW, max_batch=1)
    batcher = ContinuousBatcher(model)
    sink = Recorder(batcher)
    batcher.submit([1], GenParams(max_tokens=10**6, ignore_eos=True), threading.Event(), sink,
                   "running")
    batcher.submit([2], GenParams(max_tokens=10**6), threading.Event(), sink, "queued")
    batcher.start()
    wait_for(lambda: len(sink.items.get("running", [])) >= 2, 30, 0.001, "2 tokens")
    model.die.set()
    sink.wait(2)
    assert isinstance(sink.items["running"][-1], RuntimeError)  # the step's own error
    assert isinstance(sink.items["queued"][-1], BatcherDead)
    assert batcher.dead is not None and "reset failed: device lost" in batcher.dead
    with pytest.raises(BatcherDead):
        batcher.submit([3], GenParams(max_tokens=1), threading.Event(), sink, "later")
    batcher.stop()


def test_a_dead_engine_turns_health_503_and_requests_fail_fast() -> None:
    model = Dying(SLOW, max_batch=4)
    batcher = ContinuousBatcher(model)
    engine = load_engine(MODEL, "cpu")

    def generate(job: Job) -> AsyncIterator[int]:
        return batcher.stream(job.ids, job.params, job.cancel)

    app = asgi.model_app(ServeConfig("fastapi_batching", model=MODEL), engine, generate,
                         stats=Stats("b"), concurrency=4, on_startup=[batcher.start],
                         on_shutdown=[batcher.stop], down=lambda: batcher.dead)
    client = AsgiClient(app)
    assert client.request("GET", "/health").status == 200
    body = {"prompt": "hi", "max_tokens": 10**3, "ignore_eos": True, "stream": True}
    with client.client.stream("POST", "/v1/completions", json=body) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        model.die.set()
        raw = first + b"".join(chunks)
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["type"] == "server_error"
    wait_for(lambda: batcher.dead is not None, 10, 0.001, "the loop to die")
    health = client.request("GET", "/health")
    assert health.status == 503 and "device lost" in health.json()["reason"]
    for stream in (False, True):
        later = client.request("POST", "/v1/completions", {**body, "stream": stream})
        error = later.json()["error"]
        assert later.status == 503 and error["code"] == "engine_down", later.body
        assert "device lost" in error["message"]
    client.close()
