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
A sampled step costs about step - argmax + sample.

`--gemms` adds, per batch size, the step's matrix multiplications alone (every layer's qkv, o,
gate_up and down linears and the LM head, through the same prepacked kernels, on B rows): `gemms`,
`rest` = step - gemms and `step/gemms`; and the CPU's limits measured on the same core: weight
bytes a step reads against the memory bandwidth of a 1 GiB read (the fastest a step can stream its
weights), and the step's FLOPs against a large GEMM's rate. Other processes on the machine add
noise: compare the columns of one run.
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
    vocab = engine.vocab_limit
    seqs = [Sequence([rng.randrange(256, vocab - 1) for _ in range(128)], SAMPLED,
                     threading.Event(), QUEUE_SINK, i) for i in range(batch)]
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


def gemm_profile(engine: HFEngine, batch: int, steps: int) -> dict[str, float]:
    """The step's linears alone on `batch` rows (ms), its weight bytes and its FLOPs."""
    model = LlamaBatchModel(engine, max_batch=batch, max_len=64)
    cfg = engine.model.config
    hidden, inter = cfg.hidden_size, cfg.intermediate_size
    qkv_out = (model.heads + 2 * model.kv_heads) * model.head_dim
    x = torch.randn(batch, hidden)
    att = torch.randn(batch, model.heads * model.head_dim)
    act = torch.randn(batch, inter)

    def gemms() -> None:
        for layer in model.layers:
            layer.qkv(x)
            layer.o(att)
            layer.gate_up(x)
            layer.down(act)
        model.lm_head(x)

    shapes = [(qkv_out, hidden), (hidden, model.heads * model.head_dim), (2 * inter, hidden),
              (hidden, inter)]
    per_layer = sum(o * i for o, i in shapes)
    head = model.vocab_limit * hidden
    weights = len(model.layers) * per_layer + head
    with torch.inference_mode():
        return {"gemms": median_ms(gemms, steps), "weight_mb": weights * 4 / 1e6,
                "gflop": 2 * batch * weights / 1e9}


def cpu_limits() -> tuple[float, float]:
    """(GB/s of a 1 GiB float32 read, GFLOP/s of a 2048-cube float32 GEMM) on this thread."""
    big = torch.ones(2**28)
    read = median_ms(lambda: big.sum(), 5)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gemm = median_ms(lambda: a @ b, 5)
    return big.numel() * 4 / read / 1e6, 2 * 2048**3 / gemm / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--batches", default="32,64")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--gemms", action="store_true",
                        help="also time the step's GEMMs alone and the CPU's limits")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    engine = load_engine(args.model, device="cpu")
    assert isinstance(engine, HFEngine)
    print("batch  " + "  ".join(f"{k:>8}" for k in ("step", "lm_head", "argmax", "sample",
                                                  "per_row")) + "   (ms, medians)")
    rows: list[tuple[int, float, dict[str, float]]] = []
    for b in (int(v) for v in args.batches.split(",")):
        row = profile(engine, b, args.steps)
        print(f"{b:>5}  " + "  ".join(f"{v:8.2f}" for v in row.values()))
        if args.gemms:
            g = gemm_profile(engine, b, args.steps)
            rows.append((b, row["step"], g))
    if rows:
        bandwidth, peak = cpu_limits()
        print(f"\nthis core: {bandwidth:.1f} GB/s memory read, {peak:.1f} GFLOP/s GEMM")
        print("batch      step     gemms      rest  step/gemms   weights  at bandwidth  "
              "GFLOP  at peak")
        for b, step, g in rows:
            floor = g["weight_mb"] / 1e3 / bandwidth * 1e3  # ms to read the weights once
            compute = g["gflop"] / peak * 1e3
            print(f"{b:>5}  {step:8.2f}  {g['gemms']:8.2f}  {step - g['gemms']:8.2f}  "
                  f"{step / g['gemms']:10.2f}  {g['weight_mb']:6.0f}MB  {floor:9.2f}ms  "
                  f"{g['gflop']:5.1f}  {compute:5.2f}ms")


if __name__ == "__main__":
    main()
