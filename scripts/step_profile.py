"""Where one decode step of the continuous-batching engine spends its time, greedy vs sampled.

    .venv/bin/python scripts/step_profile.py [--model tiny] [--batches 32,64] [--steps 20]

For each batch size B, on one core with one torch thread (as `scenarios/vllm_sampled.toml` pins
the target): B sequences with 128-token prompts are prefilled, then each line is the median ms
over `--steps` repetitions of
- step: a whole greedy decode step (`LlamaBatchModel.step`: layers, LM head, argmax);
- lm_head: the final norm and LM head alone, on the step's B hidden rows;
- argmax: the greedy pick over the B rows of logits;
- sample: the batched sampler (`targets.model.sampling.sample`, temperature 0.8, top_p 0.95);
- per_row: the sampler it replaced, for comparison: per row a softmax over the vocabulary, a
  full sort for top-p and a `torch.multinomial` with the row's own generator.
A sampled step costs about step - argmax + sample. Other processes on the machine add noise.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections.abc import Callable

import torch

from targets.batching.llama import LlamaBatchModel
from targets.batching.scheduler import QUEUE_SINK, Sequence
from targets.model.engine import GenParams
from targets.model.hf import HFEngine
from targets.model.load import load_engine
from targets.model.sampling import sample

SAMPLED = GenParams(max_tokens=64, temperature=0.8, top_p=0.95, ignore_eos=True)


def median_ms(fn: Callable[[], object], steps: int) -> float:
    fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def per_row(logits: torch.Tensor, gens: list[torch.Generator]) -> list[int]:
    """The replaced sampler: one softmax, sort and multinomial per row."""
    out = []
    for i, gen in enumerate(gens):
        probs = torch.softmax(logits[i] / SAMPLED.temperature, dim=-1)
        sorted_p, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < SAMPLED.top_p
        sorted_p = sorted_p * keep
        out.append(int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=gen)]))
    return out


def profile(engine: HFEngine, batch: int, steps: int) -> dict[str, float]:
    model = LlamaBatchModel(engine, max_batch=batch, max_len=128 + steps + 8)
    rng = random.Random(0)
    seqs = [Sequence([rng.randrange(256, 50000) for _ in range(128)], SAMPLED, threading.Event(),
                     QUEUE_SINK, i) for i in range(batch)]
    for seq in seqs:
        model.join(seq)
    firsts = model.step([], [(seq, 128) for seq in seqs])
    for seq, token in zip(seqs, firsts, strict=True):
        seq.last = token
    model.generators.clear()  # the timed steps decode greedily; sampling is timed apart

    def step() -> None:
        for seq, token in zip(seqs, model.step(seqs, []), strict=True):
            seq.last = token

    with torch.inference_mode():
        x = torch.randn(batch, engine.model.config.hidden_size)
        logits = model.lm_head(model._rms(x, model.norm))
        rngs = [random.Random(i) for i in range(batch)]
        gens = [torch.Generator().manual_seed(i) for i in range(batch)]
        real = logits[:, :model.vocab_limit]
        return {
            "step": median_ms(step, steps),
            "lm_head": median_ms(lambda: model.lm_head(model._rms(x, model.norm)), steps),
            "argmax": median_ms(lambda: model._argmax(logits), steps),
            "sample": median_ms(lambda: sample(logits, [SAMPLED] * batch, rngs), steps),
            "per_row": median_ms(lambda: per_row(real, gens), max(3, steps // 4)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batches", default="32,64")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    engine = load_engine(args.model, device="cpu")
    assert isinstance(engine, HFEngine)
    print("batch  " + "  ".join(f"{k:>8}" for k in ("step", "lm_head", "argmax", "sample",
                                                  "per_row")) + "   (ms, medians)")
    for b in (int(v) for v in args.batches.split(",")):
        row = profile(engine, b, args.steps)
        print(f"{b:>5}  " + "  ".join(f"{v:8.2f}" for v in row.values()))


if __name__ == "__main__":
    main()
