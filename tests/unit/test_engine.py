"""The continuous-batching engine: batched steps, joins, leaves, cancellation, greedy parity."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from typing import Any

import pytest

from targets.engine import ContinuousBatcher, EngineStopped, Item, Sequence, load_batch_model
from targets.engine_sim import SimBatchModel
from targets.model import GenParams, HFEngine, SimEngine, SimParams, load_engine

FAST = SimParams(ttft_ms=0.0, tpot_ms=0.0)


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.001)


class Recorder:
    """A sink that keeps every item per key, the step it came in, and the batch size then."""

    def __init__(self, engine: ContinuousBatcher | None = None) -> None:
        self.engine = engine
        self.items: dict[Any, list[Item]] = {}
        self.steps: dict[Any, list[int]] = {}
        self.running: list[int] = []
        self.finished = threading.Semaphore(0)

    def put(self, items: list[tuple[Any, Item]]) -> None:
        if self.engine is not None:
            self.running.append(self.engine.running)
        for key, item in items:
            self.items.setdefault(key, []).append(item)
            self.steps.setdefault(key, []).append(self.engine.steps if self.engine else 0)
            if item is None or isinstance(item, BaseException):
                self.finished.release()

    def wait(self, n: int, timeout: float = 60.0) -> None:
        for _ in range(n):
            assert self.finished.acquire(timeout=timeout), "a sequence never finished"

    def tokens(self, key: Any) -> list[int]:
        items = self.items[key]
        assert items[-1] is None, f"sequence {key} ended with {items[-1]!r}"
        return [t for t in items[:-1] if isinstance(t, int)]


@pytest.fixture
def sim_engine(tokenizer: Any) -> SimEngine:
    from targets.model import materialize

    return SimEngine(materialize("sim:ttft_ms=1,tpot_ms=1"), FAST)


def test_sim_tokens_match_simengine_and_steps_are_batched(sim_engine: SimEngine) -> None:
    engine = ContinuousBatcher(SimBatchModel(FAST, max_batch=8))
    sink = Recorder(engine)
    prompts = [[1, 2, 3], [7] * 20, [300, 5]]
    params = GenParams(max_tokens=12, seed=3)
    for i, ids in enumerate(prompts):
        engine.submit(ids, params, threading.Event(), sink, i)
    engine.start()
    sink.wait(len(prompts))
    engine.stop()
    for i, ids in enumerate(prompts):
        assert sink.tokens(i) == list(sim_engine.generate(ids, params))
    # All three joined in one step, then decoded together: 12 steps, not 3 x 12.
    assert engine.steps == 12
    assert max(sink.running) == 3


def test_max_batch_bounds_the_running_batch_and_queued_requests_join_later() -> None:
    engine = ContinuousBatcher(SimBatchModel(FAST, max_batch=2))
    sink = Recorder(engine)
    params = GenParams(max_tokens=5)
    for i in range(5):
        engine.submit([i + 1, 2, 3], params, threading.Event(), sink, i)
    engine.start()
    sink.wait(5)
    engine.stop()
    assert max(sink.running) == 2
    assert all(len(sink.tokens(i)) == 5 for i in range(5))
    # The last request started only after earlier ones left.
    assert sink.steps[4][0] > sink.steps[0][-1]


def test_a_long_prompt_is_chunked_while_others_keep_decoding() -> None:
    engine = ContinuousBatcher(SimBatchModel(FAST, max_batch=4), prefill_tokens=8)
    sink = Recorder(engine)
    engine.submit([5, 6], GenParams(max_tokens=20), threading.Event(), sink, "short")
    engine.submit(list(range(1, 41)), GenParams(max_tokens=2), threading.Event(), sink, "long")
    engine.start()
    sink.wait(2)
    engine.stop()
    # Step 1: "short"'s 2 prompt tokens + 6 of "long"; then 8 a step beside short's decode
    # token: "long"'s 40th prompt token goes in at step 6, and "short" got a token every step.
    assert sink.steps["long"][0] == 6
    assert sink.steps["short"][:7] == [1, 2, 3, 4, 5, 6, 7]


def test_cancel_frees_the_slot_and_others_finish() -> None:
    engine = ContinuousBatcher(SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=4))
    sink = Recorder(engine)
    stop = threading.Event()
    engine.submit([1], GenParams(max_tokens=10**6), stop, sink, "endless")
    engine.submit([2], GenParams(max_tokens=30), threading.Event(), sink, "short")
    engine.start()
    wait_for(lambda: len(sink.items.get("endless", [])) >= 3)
    stop.set()
    sink.wait(2)
    wait_for(lambda: engine.running == 0)
    engine.stop()
    assert sink.items["endless"][-1] is None
    assert len(sink.tokens("short")) == 30


def test_stream_on_an_event_loop_and_leaving_early_cancels() -> None:
    engine = ContinuousBatcher(SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=4))
    engine.start()

    async def main() -> tuple[list[int], list[int]]:
        full = [t async for t in engine.stream([1, 2], GenParams(max_tokens=6))]
        cancel = threading.Event()
        part = []
        tokens = engine.stream([3], GenParams(max_tokens=10**6), cancel)
        async with contextlib.aclosing(tokens):
            async for token in tokens:
                part.append(token)
                if len(part) == 3:
                    break
        assert cancel.is_set()
        return full, part

    full, part = asyncio.run(main())
    wait_for(lambda: engine.running == 0)
    engine.stop()
    assert len(full) == 6 and len(part) == 3


def test_errors_reach_every_sequence_and_the_engine_goes_on() -> None:
    class Failing(SimBatchModel):
        fail = True

        def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
            if self.fail:
                self.fail = False
                raise RuntimeError("boom")
            return super().step(decode, chunks)

    engine = ContinuousBatcher(Failing(FAST, max_batch=4))
    sink = Recorder(engine)
    engine.submit([1], GenParams(max_tokens=3), threading.Event(), sink, "a")
    engine.submit([1] * 5000, GenParams(max_tokens=3), threading.Event(), sink, "too-long")
    engine.start()
    sink.wait(2)
    assert isinstance(sink.items["a"][-1], RuntimeError)
    assert isinstance(sink.items["too-long"][-1], ValueError)  # over the 2048-token slot
    assert list(engine.generate([4, 5], GenParams(max_tokens=3))) != []
    engine.stop()


def test_stop_ends_unfinished_sequences() -> None:
    engine = ContinuousBatcher(SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=1))
    sink = Recorder(engine)
    engine.submit([1], GenParams(max_tokens=10**6), threading.Event(), sink, "running")
    engine.submit([2], GenParams(max_tokens=10**6), threading.Event(), sink, "queued")
    engine.start()
    wait_for(lambda: len(sink.items.get("running", [])) >= 2)
    engine.stop()
    assert isinstance(sink.items["running"][-1], EngineStopped)
    assert isinstance(sink.items["queued"][-1], EngineStopped)


@pytest.fixture(scope="module")
def tiny() -> HFEngine:
    from targets.model import configure_threads

    configure_threads()
    engine = load_engine("tiny")
    assert isinstance(engine, HFEngine)
    return engine


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onednn", "torch"])
def test_greedy_tokens_equal_hfengine_with_joins_chunks_and_queueing(
        tiny: HFEngine, backend: str) -> None:
    prompts = {"a": list(range(300, 305)), "b": list(range(1000, 1133)),
               "c": [50, 60, 70, 80] * 30, "late": list(range(7000, 7021)), "one": [464]}
    params = {k: GenParams(max_tokens=20 if k != "b" else 33, ignore_eos=True) for k in prompts}
    params["one"] = GenParams(max_tokens=12)  # may stop at EOS like HFEngine
    expected = {k: list(tiny.generate(ids, params[k])) for k, ids in prompts.items()}
    # 3 slots for 5 requests, prompts chunked at <= 48 tokens a step, "late" joins mid-decode.
    engine = ContinuousBatcher(load_batch_model(tiny, max_batch=3, backend=backend),
                               prefill_tokens=48)

    class JoinLate(Recorder):
        def put(self, items: list[tuple[Any, Item]]) -> None:
            super().put(items)
            if len(self.items.get("a", [])) == 6 and "late" not in submitted:
                submitted.add("late")
                engine.submit(prompts["late"], params["late"], threading.Event(), self, "late")

    submitted: set[str] = set()
    sink = JoinLate(engine)
    for key in ("a", "b", "c", "one"):
        engine.submit(prompts[key], params[key], threading.Event(), sink, key)
    engine.start()
    sink.wait(len(prompts))
    engine.stop()
    assert {k: sink.tokens(k) for k in prompts} == expected
    assert max(sink.running) == 3


@pytest.mark.slow
def test_a_burst_of_equal_prompts_on_a_nan_filled_cache_still_equals_hfengine(
        tiny: HFEngine) -> None:
    # Five prompts prefill in one step (the last layer runs only their final rows). The cache
    # starts as NaN, what uninitialized memory may hold: a masked NaN would still poison a
    # decode row (0 * NaN), so unwritten positions must be zeroed before they are read.
    import torch

    prompts = {i: [(37 * i + 11 * j) % 50000 + 256 for j in range(40)] for i in range(4)}
    prompts[4] = list(range(900, 917))  # a shorter one: decode rows of unequal lengths
    params = GenParams(max_tokens=24, ignore_eos=True)
    expected = {k: list(tiny.generate(ids, params)) for k, ids in prompts.items()}
    model = load_batch_model(tiny, max_batch=5, max_len=128)
    with torch.inference_mode():
        for cache in (*model.kcache, *model.vcache):  # type: ignore[attr-defined]  # Llama only
            cache.fill_(float("nan"))
    engine = ContinuousBatcher(model)
    sink = Recorder(engine)
    for key, ids in prompts.items():
        engine.submit(ids, params, threading.Event(), sink, key)
    engine.start()
    sink.wait(len(prompts))
    engine.stop()
    assert {k: sink.tokens(k) for k in prompts} == expected
    assert engine.steps == params.max_tokens  # all five prefilled in the first step


@pytest.mark.slow
def test_sampling_is_seeded_per_request(tiny: HFEngine) -> None:
    engine = ContinuousBatcher(load_batch_model(tiny, max_batch=4))
    engine.start()
    sampled = GenParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=7, ignore_eos=True)
    first = list(engine.generate([1, 2, 3], sampled))
    second = list(engine.generate([1, 2, 3], sampled))
    other = list(engine.generate([1, 2, 3], dataclasses.replace(sampled, seed=8)))
    engine.stop()
    assert first == second and len(first) == 16
    assert first != other


@pytest.mark.slow
def test_target_streams_the_engines_greedy_tokens_and_413s_prompts_over_a_slot(
        tiny: HFEngine, tmp_path: Any) -> None:
    import json
    import urllib.error
    import urllib.request

    from harness.launcher import start_target

    def post(url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    server = start_target("fastapi_batching", "fastapi_batching", model="tiny", device="cpu",
                          options={"max_len": 64, "max_batch": 4},
                          log_path=tmp_path / "target.log", ready_timeout_s=240)
    with server:
        prompt = list(range(400, 440))
        status, body = post(server.url, {"prompt": prompt, "max_tokens": 12, "temperature": 0,
                                         "ignore_eos": True, "stream": True})
        assert status == 200
        chunks = [json.loads(line[6:]) for line in body.decode().split("\n\n")
                  if line.startswith("data: {")]
        text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
        expected = list(tiny.generate(prompt, GenParams(max_tokens=12, ignore_eos=True)))
        assert text == tiny.tokenizer.decode(expected)
        status, body = post(server.url, {"prompt": list(range(400, 470)), "max_tokens": 4})
        assert status == 413 and b"context" in body
