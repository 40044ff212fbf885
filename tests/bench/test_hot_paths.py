"""Micro-benchmarks of the harness's own hot paths and the continuous-batching step.

`make bench-micro` times them (pytest-benchmark) and compares with the stored baseline under
results/baselines/pytest-benchmark/; everywhere else (`make test`) the suite runs with
`--benchmark-disable` (pyproject addopts), so each body runs once as a correctness check.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from harness.arrivals import schedule
from harness.drivers.sse import SSEParser, read_chunk
from harness.metrics.requests import summarize
from harness.samples import Sample
from harness.scenario.types import LoadPoint
from targets.batching.load import load_batch_model
from targets.batching.scheduler import BatchModel, Sequence
from targets.model.engine import GenParams
from targets.model.load import load_engine
from targets.server.api import Formatter

TOKENS = 64
STEP_ROUNDS = 40
PROMPT = 16


def stream_bytes() -> list[bytes]:
    """A 64-token completions stream as a target writes it, usage chunk and [DONE] included,
    cut into network reads of 100 bytes."""
    fmt = Formatter("completions", "tiny", include_usage=True)
    body = b"".join(fmt.chunk(f" tok{i}") for i in range(TOKENS)) + fmt.tail("length", 128,
                                                                              TOKENS)
    return [body[i:i + 100] for i in range(0, len(body), 100)]


def test_sse_parse_64_token_stream(benchmark: Any) -> None:
    reads = stream_bytes()

    def parse() -> list[Any]:
        parser = SSEParser()
        return [read_chunk(p) for r in reads for p in parser.feed(r)]

    chunks = benchmark(parse)
    assert sum(c.token for c in chunks) == TOKENS
    assert chunks[-1].done and chunks[-2].usage_completion_tokens == TOKENS


def samples_100k() -> list[Sample]:
    rng = random.Random(5)
    out = []
    for i in range(100_000):
        sent = i * 0.001
        first = sent + rng.lognormvariate(-3, 0.3)
        times = (first, first + 0.005, first + 0.011, first + 0.016)
        out.append(Sample(request_id=str(i), target="t", point="c32", scheduled_at=sent,
                          sent_at=sent, status="ok", first_byte_at=first, first_token_at=first,
                          token_times=times, done_at=times[-1], prompt_tokens=128,
                          output_tokens=4, tokens_source="usage"))
    return out


def test_summarize_100k_samples(benchmark: Any) -> None:
    samples = samples_100k()
    metrics = benchmark.pedantic(summarize, args=(samples,), kwargs={"warmup_end": 1.0},
                                 rounds=5, iterations=1)
    assert metrics.ttft_ms is not None and metrics.ttft_ms.count == 99_000  # sent after 1 s
    assert 99_000 < metrics.requests.ok < 100_000  # + those sent before it that ended after
    assert metrics.ttft_ms.too_few == ()


def test_poisson_arrivals(benchmark: Any) -> None:
    point = LoadPoint(name="r200", kind="poisson", duration_s=60.0, warmup_s=2.0, rate_rps=200.0)
    times = benchmark(schedule, point, 7)
    assert times is not None and 11_950 < len(times) < 12_850  # 62 s × 200/s ± 4 σ (√12,400)
    assert times == sorted(times) and times[0] > 0 and times[-1] < 62.0


@pytest.fixture(scope="module")
def engine() -> Any:
    return load_engine("tiny", device="cpu")


def decoding(engine: Any, batch: int) -> tuple[BatchModel, list[Sequence]]:
    """`batch` sequences of the tiny model joined and prefilled, ready to decode."""
    model = load_batch_model(engine, max_batch=batch, max_len=PROMPT + STEP_ROUNDS + 16)
    rng = random.Random(batch)
    seqs = []
    for i in range(batch):
        seq = Sequence(ids=[rng.randrange(256, 50000) for _ in range(PROMPT)],
                       params=GenParams(max_tokens=STEP_ROUNDS + 8, ignore_eos=True),
                       cancel=None, sink=None, key=i)  # type: ignore[arg-type]  # unused by step
        model.join(seq)
        seqs.append(seq)
    for seq, token in zip(seqs, model.step([], [(s, PROMPT) for s in seqs]), strict=True):
        seq.last = token
    return model, seqs


@pytest.mark.parametrize("batch", [1, 32])
def test_batching_step_tiny(benchmark: Any, engine: Any, batch: int) -> None:
    model, seqs = decoding(engine, batch)

    def step() -> Iterator[int]:
        out = model.step(seqs, [])
        for seq, token in zip(seqs, out, strict=True):
            seq.last = token
        return iter(out)

    out = list(benchmark.pedantic(step, rounds=STEP_ROUNDS, iterations=1))
    assert len(out) == batch and all(0 <= t < 50257 for t in out)
    assert all(s.cached >= PROMPT + 1 for s in seqs)
