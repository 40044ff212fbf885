"""The seeded request workload: prompts with exact token counts in the model's tokenizer.

Prompts are strings of common English words, each a single BPE token with its leading space
(`" river"`), so a prompt of N words encodes to exactly N tokens; `build_prompt` checks that with
the tokenizer. The i-th request of a scenario is the same on every target and every driver.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.scenario import Workload

_WORD = re.compile(r"^Ġ[a-z]{3,9}$")


@dataclass(frozen=True)
class RequestSpec:
    """One request of the workload. `prompt_tokens` is exact in the target model's tokenizer."""

    index: int
    prompt: str
    prompt_tokens: int
    max_tokens: int


def word_pool(tokenizer: Any, size: int = 2000) -> list[str]:
    """Single-token words (with their leading space), in a fixed order from the vocabulary."""
    vocab: dict[str, int] = tokenizer.get_vocab()
    words = sorted((tok for tok in vocab if _WORD.match(tok)), key=lambda t: vocab[t])
    pool = [" " + w[1:] for w in words[:size]]
    if len(pool) < 100:
        raise ValueError("tokenizer has too few single-token words to build prompts")
    return pool


class PromptFactory:
    """Builds `RequestSpec`s deterministically from (seed, index)."""

    def __init__(self, tokenizer: Any, workload: Workload, seed: int) -> None:
        self.tokenizer = tokenizer
        self.workload = workload
        self.seed = seed
        self.pool = word_pool(tokenizer)

    def _length(self, rng: random.Random, mean: int, stdev: float) -> int:
        if stdev <= 0:
            return mean
        return max(1, round(rng.gauss(mean, stdev)))

    def build_prompt(self, n_tokens: int, rng: random.Random) -> str:
        text = "".join(rng.choice(self.pool) for _ in range(n_tokens))
        n = len(self.tokenizer.encode(text, add_special_tokens=False))
        if n != n_tokens:
            raise ValueError(f"prompt built for {n_tokens} tokens encodes to {n}")
        return text

    def get(self, index: int, prompt_tokens: int | None = None,
            output_tokens: int | None = None) -> RequestSpec:
        rng = random.Random(self.seed * 1_000_003 + index)
        wl = self.workload
        p = prompt_tokens or self._length(rng, wl.prompt_tokens, wl.prompt_tokens_stdev)
        o = output_tokens or self._length(rng, wl.output_tokens, wl.output_tokens_stdev)
        return RequestSpec(index=index, prompt=self.build_prompt(p, rng), prompt_tokens=p,
                           max_tokens=o)

    def batch(self, count: int) -> Sequence[RequestSpec]:
        return [self.get(i) for i in range(count)]


def request_body(spec: RequestSpec, workload: Workload, model: str) -> dict[str, Any]:
    """The JSON body for `spec`, for the completions or chat API."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": spec.max_tokens,
        "temperature": workload.temperature,
        "ignore_eos": workload.ignore_eos,
        "stream": workload.stream,
        "seed": spec.index,
    }
    if workload.stream:
        body["stream_options"] = {"include_usage": True}
    if workload.api == "chat":
        body["messages"] = [{"role": "user", "content": spec.prompt}]
    else:
        body["prompt"] = spec.prompt
    return body
