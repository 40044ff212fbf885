"""`sim:` as a batching model, for fast tests of the continuous batcher and its target.

A real batched step costs about the same for 1 or 32 sequences; this fake keeps that shape: one
`tpot_ms` per step whatever the batch, plus one `ttft_ms` in a step where prompts complete.
"""

from __future__ import annotations

from targets.batching.scheduler import Sequence
from targets.model.sim import sim_state, sim_token, sim_wait
from targets.model.spec import GPT2_EOS, SimParams


class SimBatchModel:
    """`sim:` as a batching model: a step costs one `tpot_ms` when any sequence decodes, plus one
    `ttft_ms` when any prompt completes (joiners are prefilled together). Tokens equal
    `SimEngine.generate`'s for the same prompt and seed.

    Per sequence it keeps the sim generator's state, from `join` until `leave` or `reset`.
    """

    def __init__(self, params: SimParams, max_batch: int, max_len: int | None = None) -> None:
        self.params = params
        self.max_batch = max_batch
        self.max_len = min(max_len or params.max_context, params.max_context)
        self.eos = GPT2_EOS
        self.states: dict[Sequence, int] = {}

    def join(self, seq: Sequence) -> None:
        self.states[seq] = sim_state(seq.ids, seq.params.seed)

    def leave(self, seq: Sequence) -> None:
        self.states.pop(seq, None)

    def reset(self) -> None:
        self.states.clear()

    def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
        for seq, n in chunks:
            seq.cached += n
        joined = [seq for seq, _ in chunks if seq.cached == len(seq.ids)]
        sim_wait(((self.params.tpot_ms if decode else 0.0)
                  + (self.params.ttft_ms if joined else 0.0)) / 1000, self.params.gil)
        out = []
        for seq in (*decode, *joined):
            self.states[seq], token = sim_token(self.states[seq])
            out.append(token)
        for seq in decode:
            seq.cached += 1
        return out
