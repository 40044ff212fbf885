"""Run a fixed batch of requests to completion: one padded forward pass per decode step.

`generate_batch(engine, seqs, emit)` is request-level (static) batching: every sequence of the
batch advances one token per step, and the batch runs until its last sequence ends. A sequence
that ends early (EOS, its `max_tokens`, a cancel) stops emitting, but its row stays in the batch
until then — that idle row and the new arrivals waiting outside are the pattern's cost.

For a transformers model the prompts are left-padded to one length with an attention mask, and
`position_ids` count only real tokens, so each row computes what `HFEngine.generate` computes
for it alone: greedy output is the same token for token (sampling too, given the same seed,
barring float ties). For the `sim:` model one batch step costs one `tpot_ms` (and the prefill
one `ttft_ms`) whatever the batch size — the idealized accelerator the sim stands for.

`emit(i, token)` is called for each new token of row `i` in order; `done(i)` once when row `i`
ends. Both run in the calling thread.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from targets.model import GenParams, HFEngine, ModelEngine, SimEngine, sim_wait
from targets.serving import Job

Emit = Callable[[int, int], None]
Done = Callable[[int], None]


@dataclass
class _Row:
    job: Job
    count: int = 0
    active: bool = True

    def finished_by(self, token: int, eos: int) -> bool:
        """Whether `token` (just emitted) ends this row, as `HFEngine.generate` decides."""
        self.count += 1
        params = self.job.params
        return (self.count >= params.max_tokens or self.job.cancel.is_set()
                or (not params.ignore_eos and token == eos))


def generate_batch(engine: ModelEngine, jobs: Sequence[Job], emit: Emit, done: Done) -> None:
    """Generate every job of the batch to its end; see the module docstring."""
    if isinstance(engine, HFEngine):
        _hf_batch(engine, jobs, emit, done)
    elif isinstance(engine, SimEngine):
        _sim_batch(engine, jobs, emit, done)
    else:
        raise TypeError(f"batched generation needs an HFEngine or SimEngine, got {type(engine)}")


def _generator(engine: HFEngine, params: GenParams) -> Any:
    """A sampling generator seeded exactly as `HFEngine.generate` seeds it (None if greedy)."""
    import torch

    if params.temperature <= 0:
        return None
    gen = torch.Generator(device=engine.device)
    gen.manual_seed(params.seed if params.seed is not None else 0)
    return gen


def _hf_batch(engine: HFEngine, jobs: Sequence[Job], emit: Emit, done: Done) -> None:
    import torch

    rows = [_Row(job) for job in jobs]
    gens = [_generator(engine, job.params) for job in jobs]
    pad = engine.eos_token_id  # any valid id: padded positions are masked out
    width = max(len(job.ids) for job in jobs)
    dev = engine.device
    with torch.inference_mode():
        ids = torch.tensor([[pad] * (width - len(j.ids)) + list(j.ids) for j in jobs], device=dev)
        mask = torch.tensor([[0] * (width - len(j.ids)) + [1] * len(j.ids) for j in jobs],
                            device=dev)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = engine.forward(ids, attention_mask=mask, position_ids=positions)
        last = logits[:, -1]
        position = positions[:, -1:]
        while True:
            step: list[int] = []
            for i, row in enumerate(rows):
                token = pad
                if row.active:
                    token = engine.next_token(last[i], row.job.params, gens[i])
                    emit(i, token)
                    if row.finished_by(token, engine.eos_token_id):
                        row.active = False
                        done(i)
                step.append(token)
            if not any(row.active for row in rows):
                return
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            position = position + 1
            logits, cache = engine.forward(torch.tensor([step], device=dev).T, cache,
                                           attention_mask=mask, position_ids=position)
            last = logits[:, -1]


def _sim_batch(engine: SimEngine, jobs: Sequence[Job], emit: Emit, done: Done) -> None:
    # The sim's own token sequence, without its per-request waits: the batch pays them once.
    untimed = copy.copy(engine)  # shares the loaded tokenizer
    untimed.params = replace(engine.params, ttft_ms=0.0, tpot_ms=0.0)
    streams = [untimed.generate(job.ids, job.params, job.cancel) for job in jobs]
    rows = [_Row(job) for job in jobs]
    wait_ms = engine.params.ttft_ms
    while any(row.active for row in rows):
        sim_wait(wait_ms / 1e3, engine.params.gil)
        wait_ms = engine.params.tpot_ms
        for i, row in enumerate(rows):
            if row.active:
                token = next(streams[i], None)  # None: cancelled since its last token
                if token is not None:
                    emit(i, token)
                if token is None or row.finished_by(token, engine.eos_token_id):
                    row.active = False
                    done(i)
