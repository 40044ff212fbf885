"""`SimEngine`: a fake model with set TTFT and per-token time, for fast tests.

Its tokens are deterministic from the prompt and seed, never EOS, so lengths are exact. The
batching models (`targets.batching`) reuse `sim_wait`, `sim_state` and `sim_token` so a batched
sim produces the same tokens as this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from targets.model.engine import GenParams
from targets.model.spec import GPT2_EOS, SimParams
from targets.model.store import load_tokenizer


class SimEngine:
    """A fake model with set TTFT and per-token time; deterministic tokens from the prompt.

    `gil="hold"` spins in Python (the GIL is held, like tokenization or Python-side sampling);
    `gil="release"` sleeps (the GIL is free, like a thread waiting on a GPU kernel).
    """

    def __init__(self, folder: Path, params: SimParams, name: str | None = None) -> None:
        self.folder = folder
        self.name = name or "sim"
        self.device = "sim"
        self.params = params
        self.tokenizer = load_tokenizer(folder)
        self.max_context = params.max_context
        self.eos_token_id = GPT2_EOS

    def generate(
        self, prompt_ids: Sequence[int], params: GenParams, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        state = sim_state(prompt_ids, params.seed)
        sim_wait(self.params.ttft_ms / 1000, self.params.gil)
        for i in range(params.max_tokens):
            if i:
                sim_wait(self.params.tpot_ms / 1000, self.params.gil)
            state, token = sim_token(state)
            yield token
            if cancel is not None and cancel.is_set():
                return


def sim_wait(seconds: float, gil: str) -> None:
    """Spend `seconds` as the sim model does: asleep (`release`, like waiting on a GPU) or
    computing in Python, holding the GIL (`hold`, like Python-heavy work).

    `hold` spins until this thread has used `seconds` of CPU (`time.thread_time`), not until
    `seconds` of wall time have passed: a fixed amount of work, as real computation is. A
    deadline on the wall clock would let a thread that waited for the GIL (or for a core)
    "finish" its work without doing it, so threads would seem to overlap: measured here, 4
    threads served 1.29× one thread's tokens that way, with the GIL held."""
    if seconds <= 0:
        return
    if gil == "release":
        time.sleep(seconds)
        return
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def sim_state(prompt_ids: Sequence[int], seed: int | None) -> int:
    """The sim model's generator state for a prompt: its tokens depend on prompt and seed."""
    return (sum(prompt_ids) * 2654435761 + (seed or 0)) % GPT2_EOS


def sim_token(state: int) -> tuple[int, int]:
    """The next state and token. Tokens 256..10255 are ordinary BPE pieces, never EOS, so
    lengths are exact."""
    state = (state * 1103515245 + 12345) % 10000
    return state, 256 + state
