"""Continuous batching: batched steps, joins, leaves, cancellation, greedy parity."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from typing import Any

import pytest

from targets.batching.load import load_batch_model
from targets.batching.scheduler import QUEUE_SINK, BatcherStopped, ContinuousBatcher, Item, Sequence
from targets.batching.sim import SimBatchModel
from targets.model.engine import GenParams
from targets.model.hf import HFEngine
from targets.model.load import load_engine
from targets.model.sim import SimEngine
from targets.model.spec import SimParams
from tests.waiting import wait_for

FAST = SimParams(ttft_ms=0.0, tpot_ms=0.0)


class Recorder:
    """A sink that keeps every item per key, the step it came in, and the batch size then."""

    def __init__(self, batcher: ContinuousBatcher | None = None) -> None:
        self.batcher = batcher
        self.items: dict[Any, list[Item]] = {}
        self.steps: dict[Any, list[int]] = {}
        self.running: list[int] = []
        self.finished = threading.Semaphore(0)

    def put(self, items: list[tuple[Any, Item]]) -> None:
        if self.batcher is not None:
            self.running.append(self.batcher.running)
        for key, item in items:
            self.items.setdefault(key, []).append(item)
            self.steps.setdefault(key, []).append(self.batcher.steps if self.batcher else 0)
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
    from targets.model.store import materialize

    return SimEngine(materialize("sim:ttft_ms=1,tpot_ms=1"), FAST)


def test_sim_tokens_match_simengine_and_steps_are_batched(sim_engine: SimEngine) -> None:
    batcher = ContinuousBatcher(SimBatchModel(FAST, max_batch=8))
    sink = Recorder(batcher)
    prompts = [[1, 2, 3], [7] * 20, [300, 5]]
    params = GenParams(max_tokens=12, seed=3)
    for i, ids in enumerate(prompts):
        batcher.submit(ids, params, threading.Event(), sink, i)
    batcher.start()
    sink.wait(len(prompts))
    batcher.stop()
    for i, ids in enumerate(prompts):
        assert sink.tokens(i) == list(sim_engine.generate(ids, params))
    # All three joined in one step, then decoded together: 12 steps, not 3 x 12.
    assert batcher.steps == 12
    assert max(sink.running) == 3


def test_max_batch_bounds_the_running_batch_and_queued_requests_join_later() -> None:
    batcher = ContinuousBatcher(SimBatchModel(FAST, max_batch=2))
    sink = Recorder(batcher)
    params = GenParams(max_tokens=5)
    for i in range(5):
        batcher.submit([i + 1, 2, 3], params, threading.Event(), sink, i)
    batcher.start()
    sink.wait(5)
    batcher.stop()
    assert max(sink.running) == 2
    assert all(len(sink.tokens(i)) == 5 for i in range(5))
    # The last request started only after earlier ones left.
    assert sink.steps[4][0] > sink.steps[0][-1]


def test_a_long_prompt_is_chunked_while_others_keep_decoding() -> None:
    batcher = ContinuousBatcher(SimBatchModel(FAST, max_batch=4), prefill_tokens=8)
    sink = Recorder(batcher)
    batcher.submit([5, 6], GenParams(max_tokens=20), threading.Event(), sink, "short")
    batcher.submit(list(range(1, 41)), GenParams(max_tokens=2), threading.Event(), sink, "long")
    batcher.start()
    sink.wait(2)
    batcher.stop()
    # Step 1: "short"'s 2 prompt tokens + 6 of "long"; then 8 a step beside short's decode
    # token: "long"'s 40th prompt token goes in at step 6, and "short" got a token every step.
    assert sink.steps["long"][0] == 6
    assert sink.steps["short"][:7] == [1, 2, 3, 4, 5, 6, 7]


def test_cancel_frees_the_slot_and_others_finish() -> None:
    model = SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=4)
    batcher = ContinuousBatcher(model)
    sink = Recorder(batcher)
    stop = threading.Event()
    batcher.submit([1], GenParams(max_tokens=10**6), stop, sink, "endless")
    batcher.submit([2], GenParams(max_tokens=30), threading.Event(), sink, "short")
    batcher.start()
    wait_for(lambda: len(sink.items.get("endless", [])) >= 3, 30, 0.001,
             "3 tokens of the endless sequence")
    stop.set()
    sink.wait(2)
    wait_for(lambda: batcher.running == 0, 30, 0.001, "an empty batch")
    batcher.stop()
    assert sink.items["endless"][-1] is None
    assert len(sink.tokens("short")) == 30
    assert model.states == {}  # both left: the model keeps nothing for them


def test_stream_on_an_event_loop_and_leaving_early_cancels() -> None:
    batcher = ContinuousBatcher(SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=4))
    batcher.start()

    async def main() -> tuple[list[int], list[int]]:
        full = [t async for t in batcher.stream([1, 2], GenParams(max_tokens=6))]
        cancel = threading.Event()
        part = []
        tokens = batcher.stream([3], GenParams(max_tokens=10**6), cancel)
        async with contextlib.aclosing(tokens):
            async for token in tokens:
                part.append(token)
                if len(part) == 3:
                    break
        assert cancel.is_set()
        return full, part

    full, part = asyncio.run(main())
    wait_for(lambda: batcher.running == 0, 30, 0.001, "the cancelled stream to leave the batch")
    batcher.stop()
    assert len(full) == 6 and len(part) == 3


def test_errors_reach_every_sequence_and_the_batcher_goes_on() -> None:
    class Failing(SimBatchModel):
        fail = True

        def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
            if self.fail:
                self.fail = False
                raise RuntimeError("boom")
            return super().step(decode, chunks)

    model = Failing(FAST, max_batch=4)
    batcher = ContinuousBatcher(model)
    sink = Recorder(batcher)
    batcher.submit([1], GenParams(max_tokens=3), threading.Event(), sink, "a")
    batcher.submit([1] * 5000, GenParams(max_tokens=3), threading.Event(), sink, "too-long")
    batcher.start()
    sink.wait(2)
    assert isinstance(sink.items["a"][-1], RuntimeError)
    assert isinstance(sink.items["too-long"][-1], ValueError)  # over the 2048-token slot
    assert model.states == {}  # the failed step reset the model
    assert list(batcher.generate([4, 5], GenParams(max_tokens=3))) != []
    batcher.stop()


def test_stop_ends_unfinished_sequences() -> None:
    batcher = ContinuousBatcher(SimBatchModel(SimParams(ttft_ms=0, tpot_ms=1), max_batch=1))
    sink = Recorder(batcher)
    batcher.submit([1], GenParams(max_tokens=10**6), threading.Event(), sink, "running")
    batcher.submit([2], GenParams(max_tokens=10**6), threading.Event(), sink, "queued")
    batcher.start()
    wait_for(lambda: len(sink.items.get("running", [])) >= 2, 30, 0.001,
             "2 tokens of the running sequence")
    batcher.stop()
    assert isinstance(sink.items["running"][-1], BatcherStopped)
    assert isinstance(sink.items["queued"][-1], BatcherStopped)


def test_slot_cache_moves_swap_cached_tokens_and_freed_slots_are_reused() -> None:
    import torch

    from targets.batching.slot_cache import SlotCache

    cache = SlotCache(layers=2, slots=3, kv_heads=1, max_len=4, head_dim=1, dtype=torch.float32,
                      device=torch.device("cpu"))
    a, b, c = (Sequence([1, 2, 3], GenParams(max_tokens=1), threading.Event(), QUEUE_SINK, key)
               for key in "abc")
    assert (cache.assign(a), cache.assign(b)) == (0, 1)
    a.cached, b.cached = 3, 2
    for layer in (*cache.k, *cache.v):
        layer.zero_()
        layer[0, 0, :3, 0] = torch.tensor([1.0, 2.0, 3.0])
        layer[1, 0, :2, 0] = torch.tensor([7.0, 8.0])
    cache.written(0, 3)
    cache.written(1, 2)
    cache.move(a, 1)
    assert cache.slot_of == {a: 1, b: 0} and cache.owner == [b, a, None]
    for layer in (*cache.k, *cache.v):
        assert layer[1, 0, :3, 0].tolist() == [1.0, 2.0, 3.0]
        assert layer[0, 0, :2, 0].tolist() == [7.0, 8.0]
    assert cache.clean[:2] == [3, 3]
    cache.release(b)
    assert cache.assign(c) == 0 and cache.slot_of == {a: 1, c: 0}
    cache.clear()
    assert cache.slot_of == {} and cache.owner == [None] * 3


@pytest.fixture(scope="module")
def tiny() -> HFEngine:
    from targets.model.tuning import configure_threads

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
    batcher = ContinuousBatcher(load_batch_model(tiny, max_batch=3, backend=backend),
                               prefill_tokens=48)

    class JoinLate(Recorder):
        def put(self, items: list[tuple[Any, Item]]) -> None:
            super().put(items)
            if len(self.items.get("a", [])) == 6 and "late" not in submitted:
                submitted.add("late")
                batcher.submit(prompts["late"], params["late"], threading.Event(), self, "late")

    submitted: set[str] = set()
    sink = JoinLate(batcher)
    for key in ("a", "b", "c", "one"):
        batcher.submit(prompts[key], params[key], threading.Event(), sink, key)
    batcher.start()
    sink.wait(len(prompts))
    batcher.stop()
    assert {k: sink.tokens(k) for k in prompts} == expected
    assert max(sink.running) == 3


@pytest.mark.slow
def test_a_burst_of_equal_prompts_on_a_nan_filled_cache_still_equals_hfengine(
        tiny: HFEngine) -> None:
    # Five prompts prefill in one step (the last layer runs only their final rows). The cache
    # starts as NaN, what uninitialized memory may hold: a masked NaN would still poison a
    # decode row (0 * NaN), so unwritten positions must be zeroed before they are read.
    import torch

    from targets.batching.llama import LlamaBatchModel

    prompts = {i: [(37 * i + 11 * j) % 50000 + 256 for j in range(40)] for i in range(4)}
    prompts[4] = list(range(900, 917))  # a shorter one: decode rows of unequal lengths
    params = GenParams(max_tokens=24, ignore_eos=True)
    expected = {k: list(tiny.generate(ids, params)) for k, ids in prompts.items()}
    model = LlamaBatchModel(tiny, max_batch=5, max_len=128)
    with torch.inference_mode():
        for cache in (*model.cache.k, *model.cache.v):
            cache.fill_(float("nan"))
    batcher = ContinuousBatcher(model)
    sink = Recorder(batcher)
    for key, ids in prompts.items():
        batcher.submit(ids, params, threading.Event(), sink, key)
    batcher.start()
    sink.wait(len(prompts))
    batcher.stop()
    assert {k: sink.tokens(k) for k in prompts} == expected
    assert batcher.steps == params.max_tokens  # all five prefilled in the first step


@pytest.mark.slow
def test_sampling_is_seeded_per_request(tiny: HFEngine) -> None:
    from targets.batching.llama import LlamaBatchModel

    model = LlamaBatchModel(tiny, max_batch=4)
    batcher = ContinuousBatcher(model)
    batcher.start()
    sampled = GenParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=7, ignore_eos=True)
    first = list(batcher.generate([1, 2, 3], sampled))
    second = list(batcher.generate([1, 2, 3], sampled))
    other = list(batcher.generate([1, 2, 3], dataclasses.replace(sampled, seed=8)))
    batcher.stop()
    assert first == second and len(first) == 16
    assert first != other
    assert model.generators == {} and model.cache.slot_of == {}  # dropped as each one left


@pytest.mark.slow
def test_a_seeded_request_samples_the_same_alone_and_among_neighbours(tiny: HFEngine) -> None:
    from targets.batching.llama import LlamaBatchModel

    seeded = GenParams(max_tokens=16, temperature=0.8, top_p=0.95, seed=7, ignore_eos=True)
    batcher = ContinuousBatcher(LlamaBatchModel(tiny, max_batch=4, max_len=64))
    batcher.start()
    alone = list(batcher.generate([5, 6, 7, 8], seeded))
    sink = Recorder(batcher)
    neighbours = {"greedy": GenParams(max_tokens=9, ignore_eos=True),  # leaves early
                  "hot": GenParams(max_tokens=16, temperature=1.3, top_p=0.5, ignore_eos=True),
                  "cold": GenParams(max_tokens=16, temperature=0.2, seed=1, ignore_eos=True)}
    for key, params in neighbours.items():
        batcher.submit([300 + len(key), 42], params, threading.Event(), sink, key)
    batcher.submit([5, 6, 7, 8], seeded, threading.Event(), sink, "seeded")
    sink.wait(4)
    batcher.stop()
    assert sink.tokens("seeded") == alone and len(set(alone)) > 1
    # the same seed through the single-request engine and through dynamic batching's rows
    assert list(tiny.generate([5, 6, 7, 8], seeded)) == alone


@pytest.mark.slow
def test_prefix_cache_serves_shared_blocks_and_greedy_output_stays_the_same(
        tiny: HFEngine) -> None:
    from targets.batching.llama import LlamaBatchModel

    system = [(13 * j) % 50000 + 256 for j in range(40)]  # two whole 16-token blocks and 8 more
    prompts = [[*system, 7, 8, 9], [*system, 900, 901], [*system[:20], 5]]
    params = GenParams(max_tokens=12, ignore_eos=True)
    expected = [list(tiny.generate(ids, params)) for ids in prompts]
    model = LlamaBatchModel(tiny, max_batch=2, max_len=96, prefix_gb=0.01)
    assert model.prefix is not None
    batcher = ContinuousBatcher(model)
    batcher.start()
    got = [list(batcher.generate(ids, params)) for ids in prompts]
    batcher.stop()
    assert got == expected
    # the first finds nothing; the second its two system blocks; the third the first block
    assert (model.prefix.queries, model.prefix.hits) == (sum(map(len, prompts)), 32 + 16)


@pytest.mark.slow
def test_a_full_prefix_cache_evicts_the_least_recently_used_blocks(tiny: HFEngine) -> None:
    from targets.batching.llama import LlamaBatchModel

    model = LlamaBatchModel(tiny, max_batch=1, max_len=64, prefix_gb=1e-9)  # no whole block
    assert model.prefix is None
    model = LlamaBatchModel(tiny, max_batch=1, max_len=64, prefix_gb=2**-12)  # 2 x 128 KiB
    assert model.prefix is not None and len(model.prefix.free) == 2
    batcher = ContinuousBatcher(model)
    batcher.start()
    params = GenParams(max_tokens=2, ignore_eos=True)
    first, second = list(range(300, 317)), list(range(400, 433))
    for ids in (first, second, first):  # second's two blocks push first's out
        list(batcher.generate(ids, params))
    batcher.stop()
    assert model.prefix.hits == 0 and len(model.prefix.where) == 2


@pytest.mark.slow
def test_unseeded_requests_with_the_same_prompt_sample_different_tokens(tiny: HFEngine) -> None:
    from targets.batching.llama import LlamaBatchModel

    params = GenParams(max_tokens=16, temperature=1.0, ignore_eos=True)
    batcher = ContinuousBatcher(LlamaBatchModel(tiny, max_batch=2, max_len=64))
    sink = Recorder(batcher)
    for key in ("a", "b"):
        batcher.submit([11, 12, 13], params, threading.Event(), sink, key)
    batcher.start()
    sink.wait(2)
    batcher.stop()
    assert sink.tokens("a") != sink.tokens("b")


@pytest.mark.slow
def test_target_streams_the_batchers_greedy_tokens_and_413s_prompts_over_a_slot(
        tiny: HFEngine, tmp_path: Any) -> None:
    import json
    import urllib.error
    import urllib.request

    from harness.run.launcher import start_target

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
