"""Per-step time of the continuous batcher vs a plain batched `model.generate`.

    .venv/bin/python scripts/batcher_bench.py [--model tiny] [--batches 1,8,32,64] [--steps 24]

For each batch size B, in one process and side by side:
- batcher: B sequences with `--prompt`-token prompts decode together in `ContinuousBatcher`; the
  time between consecutive steps' token deliveries in steady decode (scheduler included).
- generate: transformers `model.generate` on the same B prompts, greedy, KV cache; the time
  between consecutive decode steps (a stopping criterion timestamps each step).
Both are the median over `--steps` steps, so a step slowed by another process does not count.
The ratio batcher / generate is the serving overhead (below 1: the batcher is faster). Both use the
same torch threads; other processes on the machine add noise: compare the columns of one run.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import threading
import time
from typing import Any

import torch

from targets.batching.load import load_batch_model
from targets.batching.scheduler import ContinuousBatcher, Item
from targets.model.engine import GenParams
from targets.model.hf import HFEngine
from targets.model.load import load_engine
from targets.model.tuning import configure_threads


def prompts(batch: int, length: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(256, 50000) for _ in range(length)] for _ in range(batch)]


class StepClock:
    """A sink (one `put` per batcher step) and a stopping criterion (one call per generate step)
    that keeps when each step ended, and stops generate after `limit` steps."""

    def __init__(self, limit: int) -> None:
        self.times: list[float] = []
        self.limit = limit
        self.done = threading.Event()

    def put(self, items: list[tuple[Any, Item]]) -> None:
        self.times.append(time.perf_counter())
        if len(self.times) >= self.limit:
            self.done.set()

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        self.put([])
        return torch.full((input_ids.shape[0],), len(self.times) >= self.limit, dtype=torch.bool)

    def median_step_ms(self, skip: int) -> float:
        times = self.times[skip:]
        return statistics.median(b - a for a, b in itertools.pairwise(times)) * 1000


def batcher_step_ms(engine: HFEngine, batch: int, prompt: int, steps: int, backend: str) -> float:
    """Median ms per steady decode step; the first steps (prefill) are skipped."""
    model = load_batch_model(engine, max_batch=batch, max_len=prompt + steps + 8, backend=backend)
    batcher = ContinuousBatcher(model, prefill_tokens=batch * prompt)  # all prompts in one step
    clock = StepClock(limit=steps + 2)
    cancel = threading.Event()
    params = GenParams(max_tokens=steps + 4, ignore_eos=True)
    for ids in prompts(batch, prompt):
        batcher.submit(ids, params, cancel, clock, None)
    batcher.start()
    try:
        if not clock.done.wait(300):
            raise TimeoutError("the batcher made no progress")
    finally:
        cancel.set()
        batcher.stop()
    return clock.median_step_ms(skip=1)


def generate_step_ms(engine: HFEngine, batch: int, prompt: int, steps: int) -> float:
    """Median ms per decode step of transformers' batched greedy `generate`."""
    ids = torch.tensor(prompts(batch, prompt), device=engine.device)
    clock = StepClock(limit=steps + 1)
    with torch.inference_mode():
        engine.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                              max_new_tokens=steps + 4, pad_token_id=0, eos_token_id=None,
                              stopping_criteria=[clock])
    return clock.median_step_ms(skip=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batches", default="1,8,32,64")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens")
    parser.add_argument("--steps", type=int, default=24, help="decode steps timed")
    parser.add_argument("--backend", default="onednn", choices=["onednn", "torch"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    engine = load_engine(args.model)
    if not isinstance(engine, HFEngine):
        parser.error("batcher_bench needs a transformers model, not sim:")
    print(f"model {args.model}, {threads} torch threads, prompt {args.prompt} tokens, linear "
          f"backend {args.backend}; median ms per decode step over {args.steps} steps")
    print(f"{'batch':>5} {'batcher ms':>10} {'generate ms':>12} {'ratio':>6} "
          f"{'batcher tok/s':>13} {'generate tok/s':>15}")
    for batch in (int(b) for b in args.batches.split(",")):
        bat = batcher_step_ms(engine, batch, args.prompt, args.steps, args.backend)
        gen = generate_step_ms(engine, batch, args.prompt, args.steps)
        print(f"{batch:>5} {bat:>10.2f} {gen:>12.2f} {bat / gen:>6.2f} "
              f"{batch / bat * 1000:>13.0f} {batch / gen * 1000:>15.0f}", flush=True)


if __name__ == "__main__":
    main()
