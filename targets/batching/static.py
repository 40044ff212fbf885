"""Static (request-level) batching: run a fixed batch of requests to completion together.

`generate_batch(engine, jobs, emit, done)` advances every sequence of the batch one token per
step, with one padded forward pass per step, and runs until the batch's last sequence ends. A
sequence that ends early (EOS, its `max_tokens`, a cancel) stops emitting, but its row stays in
the batch until then — that idle row and the new arrivals waiting outside are the pattern's
cost. (`fastapi_dynamic_batching` gathers the batches; continuous batching, the rest of this
package, lets sequences leave and join at every step instead.)

For a transformers model the prompts are left-padded to one length with an attention mask, and
`position_ids` count only real tokens, so each row computes what `HFEngine.generate` computes
for it alone: greedy output is the same token for token (sampling too, given the same seed,
barring float ties; a step's sampling rows are drawn in one batch, targets/model/sampling.py).
For the `sim:` model one batch step costs one `tpot_ms` (and the prefill one `ttft_ms`) whatever
the batch size — the idealized accelerator the sim stands for — and each row's tokens are
`SimEngine.generate`'s.

`emit(i, token)` is called for each new token of row `i` in order; `done(i)` once when row `i`
ends. Both run in the calling thread. A row ends after the token that reaches its `max_tokens`
or is EOS (unless `ignore_eos`), or after the first token emitted once its `cancel` is set.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from targets.model.engine import GenParams, ModelEngine
from targets.model.hf import HFEngine
from targets.model.sampling import argmax, sample
from targets.model.sim import SimEngine, sim_state, sim_token, sim_wait

Emit = Callable[[int, int], None]
Done = Callable[[int], None]


class BatchJob(Protocol):
    """What a static batch needs of one request: its prompt ids, parameters and cancel flag."""

    @property
    def ids(self) -> Sequence[int]: ...
    @property
    def params(self) -> GenParams: ...
    @property
    def cancel(self) -> threading.Event: ...


@dataclass
class _Row:
    job: BatchJob
    count: int = 0
    active: bool = True

    def finished_by(self, token: int, eos: int) -> bool:
        """Whether `token` (just emitted) ends this row, as `HFEngine.generate` decides."""
        self.count += 1
        params = self.job.params
        return (self.count >= params.max_tokens or self.job.cancel.is_set()
                or (not params.ignore_eos and token == eos))


def generate_batch(engine: ModelEngine, jobs: Sequence[BatchJob], emit: Emit, done: Done) -> None:
    """Generate every job of the batch to its end; see the module docstring."""
    if isinstance(engine, HFEngine):
        _hf_batch(engine, jobs, emit, done)
    elif isinstance(engine, SimEngine):
        _sim_batch(engine, jobs, emit, done)
    else:
        raise TypeError(f"batched generation needs an HFEngine or SimEngine, got {type(engine)}")


def _hf_batch(engine: HFEngine, jobs: Sequence[BatchJob], emit: Emit, done: Done) -> None:
    import torch

    rows = [_Row(job) for job in jobs]
    gens = [engine.generator(job.params) for job in jobs]
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
            step = _next_tokens(engine, last, rows, gens)
            for i, row in enumerate(rows):
                if row.active:
                    emit(i, step[i])
                    if row.finished_by(step[i], engine.eos_token_id):
                        row.active = False
                        done(i)
            if not any(row.active for row in rows):
                return
            mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
            position = position + 1
            logits, cache = engine.forward(torch.tensor([step], device=dev).T, cache,
                                           attention_mask=mask, position_ids=position)
            last = logits[:, -1]


def _next_tokens(engine: HFEngine, last: Any, rows: list[_Row],
                 gens: list[random.Random | None]) -> list[int]:
    """Each row's next token from its logits (`last`, `[rows, vocab]`): the argmax for the greedy
    rows, one batched `sampling.sample` for the sampling ones; the padding id for ended rows."""
    import torch

    logits = last[:, : engine.vocab_limit]
    out = [engine.eos_token_id] * len(rows)
    greedy = [i for i, row in enumerate(rows) if row.active and gens[i] is None]
    drawn = [i for i, row in enumerate(rows) if row.active and gens[i] is not None]
    if greedy:
        tokens = argmax(logits[torch.tensor(greedy, device=logits.device)])
        for i, token in zip(greedy, tokens, strict=True):
            out[i] = token
    if drawn:
        tokens = sample(logits[torch.tensor(drawn, device=logits.device)],
                        [rows[i].job.params for i in drawn],
                        [g for i in drawn if (g := gens[i]) is not None])
        for i, token in zip(drawn, tokens, strict=True):
            out[i] = token
    return out


def _sim_batch(engine: SimEngine, jobs: Sequence[BatchJob], emit: Emit, done: Done) -> None:
    # The sim's own token sequence per row; the batch pays its waits once per step.
    rows = [_Row(job) for job in jobs]
    states = [sim_state(job.ids, job.params.seed) for job in jobs]
    wait_ms = engine.params.ttft_ms
    while any(row.active for row in rows):
        sim_wait(wait_ms / 1e3, engine.params.gil)
        wait_ms = engine.params.tpot_ms
        for i, row in enumerate(rows):
            if row.active:
                states[i], token = sim_token(states[i])
                emit(i, token)
                if row.finished_by(token, engine.eos_token_id):
                    row.active = False
                    done(i)
