"""The seeded request workload: prompts with exact token counts in the model's tokenizer.

Prompts are strings of common English words, each a single BPE token with its leading space
(`" river"`), so a prompt of N words encodes to exactly N tokens; `build_prompt` checks that with
the tokenizer.

Two ways to number prompts (`workload.prompt_reuse`):

- **distinct** (default, `PromptFactory.unique`): request g of the run (a run-wide index: each
  load point gets its own block of `BLOCK` indices from `next_block`, whatever its target,
  driver or repeat) starts with `HEAD_TOKENS` words that spell g in base len(pool), least
  significant first, then a body sliced from one of `BODIES` checked word strings. Two requests
  of a run therefore differ in their first token or within their first four, so a prefix cache
  (vLLM's block hashes chain from token 0) never hits across them. Building one costs a few µs
  (no tokenizer call: the body was checked once, the head words are pool words).
- **reuse** (`prompt_reuse = true`, `PromptFactory.get`): request i of every point is
  (seed, i), the same on every target and driver: the pool of the first releases.

Lengths: request i of a point draws its (prompt, output) lengths from
`random.Random(seed·1000003 + i)` (i counted in the point, so every target gets the same ones)
through the workload's distributions (`harness.workload.lengths`, `prompt_dist` / `output_dist`) or
a row of its table, then `clip`s them to the model's context (`PromptFactory.context`, the
tokenizer's `model_max_length`), counting the shared prefix. `max_tokens` is the drawn output
length, so with `ignore_eos` every answer has exactly that many tokens.

A real prompt set (`workload.prompts`, `harness.workload.prompt_sets`): request i sends prompt
`order[i % n]` of the set's n prompts, `order` a permutation seeded by the scenario's seed, with
its own token count; only the output length (the `max_tokens` cap) is drawn. Its prompts repeat
after n requests, so a target with a prefix cache reuses them from then on.

Shared prefixes (`workload.prefixes` = N > 0, distinct prompts only): request i's prompt is
prefix k (k drawn from the same seeded random; N checked word strings of `prefix_tokens`) + its
distinct prompt (as above) of the drawn length, so suffixes stay distinct across the run.
"""

from __future__ import annotations

import random
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.scenario.types import Workload
from harness.workload.lengths import Lengths, clip
from harness.workload.prompt_sets import prompt_set

_WORD = re.compile(r"^Ġ[a-z]{3,9}$")
HEAD_TOKENS = 4  # words that spell a request's run-wide index: len(pool)**4 distinct prompts
BLOCK = 1_000_000  # run-wide indices each load point may use
BODIES = 256  # checked body strings the distinct prompts slice from


@dataclass(frozen=True)
class RequestSpec:
    """One request of the workload. `prompt_tokens` is exact in the target model's tokenizer."""

    index: int
    prompt: str
    prompt_tokens: int
    max_tokens: int
    prefix: int | None = None  # which shared prefix the prompt starts with


def prompt_dist(workload: Workload) -> Lengths:
    """The prompt length distribution (`workload.prompt_tokens` ± its stdev when none is set)."""
    if workload.prompt_lengths is not None:
        return workload.prompt_lengths
    return Lengths("normal", workload.prompt_tokens, workload.prompt_tokens_stdev)


def output_dist(workload: Workload) -> Lengths:
    """The output length distribution (`workload.output_tokens` ± its stdev when none is set)."""
    if workload.output_lengths is not None:
        return workload.output_lengths
    return Lengths("normal", workload.output_tokens, workload.output_tokens_stdev)


_POOLS: weakref.WeakKeyDictionary[Any, dict[int, list[str]]] = weakref.WeakKeyDictionary()


def word_pool(tokenizer: Any, size: int = 2000) -> list[str]:
    """Single-token words (with their leading space), in a fixed order from the vocabulary.
    Kept per tokenizer (reading the vocabulary takes ~0.3 s)."""
    pools = _POOLS.setdefault(tokenizer, {})
    if size not in pools:
        vocab: dict[str, int] = tokenizer.get_vocab()
        words = sorted((tok for tok in vocab if _WORD.match(tok)), key=lambda t: vocab[t])
        pool = [" " + w[1:] for w in words[:size]]
        if len(pool) < 100:
            raise ValueError("tokenizer has too few single-token words to build prompts")
        pools[size] = pool
    return list(pools[size])


class PromptFactory:
    """Builds `RequestSpec`s deterministically from (seed, index)."""

    def __init__(self, tokenizer: Any, workload: Workload, seed: int,
                 context: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.workload = workload
        self.seed = seed
        self.pool = word_pool(tokenizer)
        limit = context or getattr(tokenizer, "model_max_length", 0)
        self.context = int(limit) if isinstance(limit, int) and 1 < limit < 10**7 else 10**7
        self._blocks = 0
        self._bodies: dict[int, list[str]] = {}
        self._prefixes: dict[int, str] = {}
        self._prompt, self._output = prompt_dist(workload), output_dist(workload)
        self._set: tuple[str, ...] = ()
        self._set_tokens: dict[int, int] = {}
        if workload.prompts != "words":
            self._set = prompt_set(workload.prompts, workload.api)
            self._order = list(range(len(self._set)))
            random.Random(seed * 5_000_011).shuffle(self._order)

    def next_block(self) -> int:
        """The first run-wide index of the next load point's block (`BLOCK` long)."""
        start = self._blocks * BLOCK
        self._blocks += 1
        return start

    def lengths(self, rng: random.Random, prompt_tokens: int | None = None,
                output_tokens: int | None = None) -> tuple[int, int]:
        """A request's (prompt, output) lengths: given ones kept, the rest drawn from `rng`,
        both clipped to the context (less the shared prefix: the prompt here is its suffix)."""
        table = self.workload.length_table
        if table and not (prompt_tokens and output_tokens):
            row = table[rng.randrange(len(table))]
            p, o = prompt_tokens or row[0], output_tokens or row[1]
        else:
            p = prompt_tokens or self._prompt.draw(rng)
            o = output_tokens or self._output.draw(rng)
        shared = self.workload.prefix_tokens if self.workload.prefixes else 0
        p, o = clip(p + shared, o, self.context)
        return max(1, p - shared), o

    def prefix(self, k: int) -> str:
        """Shared prefix `k`: `workload.prefix_tokens` pool words, checked by the tokenizer."""
        text = self._prefixes.get(k)
        if text is None:
            rng = random.Random(self.seed * 9_000_011 + k)
            text = self._prefixes[k] = self.build_prompt(self.workload.prefix_tokens, rng)
        return text

    def build_prompt(self, n_tokens: int, rng: random.Random) -> str:
        text = "".join(rng.choice(self.pool) for _ in range(n_tokens))
        n = len(self.tokenizer.encode(text, add_special_tokens=False))
        if n != n_tokens:
            raise ValueError(f"prompt built for {n_tokens} tokens encodes to {n}")
        return text

    def from_set(self, index: int, rng: random.Random,
                 output_tokens: int | None = None) -> RequestSpec:
        """Request `index` (run-wide) from the real prompt set: its prompt as written (chosen by
        its place in its point's block, so request i of every point sends the same one),
        measured in tokens; the output cap drawn (or given), clipped to the context left after
        the prompt."""
        k = self._order[index % BLOCK % len(self._set)]
        prompt = self._set[k]
        p = self._set_tokens.get(k)
        if p is None:
            p = self._set_tokens[k] = len(self.tokenizer.encode(prompt, add_special_tokens=False))
        o = output_tokens or self._output.draw(rng)
        if p >= self.context:
            raise ValueError(f"prompt {k} of {self.workload.prompts} is {p} tokens, over the "
                             f"model's context of {self.context}")
        return RequestSpec(index=index, prompt=prompt, prompt_tokens=p,
                           max_tokens=max(1, min(o, self.context - p)))

    def get(self, index: int, prompt_tokens: int | None = None,
            output_tokens: int | None = None) -> RequestSpec:
        rng = random.Random(self.seed * 1_000_003 + index)
        if self._set:
            return self.from_set(index, rng, output_tokens)
        p, o = self.lengths(rng, prompt_tokens, output_tokens)
        return RequestSpec(index=index, prompt=self.build_prompt(p, rng), prompt_tokens=p,
                           max_tokens=o)

    def unique(self, index: int, prompt_tokens: int | None = None,
               output_tokens: int | None = None) -> RequestSpec:
        """Request `index` (run-wide) with a prompt no other index of the run has (see the module
        docstring). Lengths (and the shared prefix) are drawn as `get(index % BLOCK)` draws them,
        so request i of every point gets the same ones, whatever its target or driver."""
        rng = random.Random(self.seed * 1_000_003 + index % BLOCK)
        if self._set:
            return self.from_set(index, rng, output_tokens)
        p, o = self.lengths(rng, prompt_tokens, output_tokens)
        n, head, digits = len(self.pool), [], index
        for _ in range(min(p, HEAD_TOKENS)):
            digits, d = divmod(digits, n)
            head.append(self.pool[d])
        body = self._body(index % BODIES, p - len(head))
        prompt = "".join(head) + "".join(body[:p - len(head)])
        if not self.workload.prefixes:
            return RequestSpec(index=index, prompt=prompt, prompt_tokens=p, max_tokens=o)
        k = rng.randrange(self.workload.prefixes)
        return RequestSpec(index=index, prompt=self.prefix(k) + prompt, max_tokens=o,
                           prompt_tokens=self.workload.prefix_tokens + p, prefix=k)

    def _body(self, k: int, length: int) -> list[str]:
        """Body `k` as words, at least `length` long; checked by the tokenizer when built.
        A longer rebuild extends the shorter one (the same seeded draws, in order)."""
        words = self._bodies.get(k)
        if words is None or len(words) < length:
            size = max(length, self.workload.prompt_tokens, 1)
            rng = random.Random(self.seed * 7_000_003 + k)
            words = [rng.choice(self.pool) for _ in range(size)]
            n = len(self.tokenizer.encode("".join(words), add_special_tokens=False))
            if n != size:
                raise ValueError(f"prompt built for {size} tokens encodes to {n}")
            self._bodies[k] = words
        return words

    def batch(self, count: int) -> Sequence[RequestSpec]:
        return [self.get(i) for i in range(count)]


def request_body(spec: RequestSpec, workload: Workload, model: str) -> dict[str, Any]:
    """The JSON body for `spec`, for the completions or chat API. It carries a `seed` only with
    `workload.seed = "per_request"` (vLLM bench serve and GuideLLM send none)."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": spec.max_tokens,
        "temperature": workload.temperature,
        "ignore_eos": workload.ignore_eos,
        "stream": workload.stream,
    }
    if workload.top_p < 1:
        body["top_p"] = workload.top_p
    if workload.top_k > 0:
        body["top_k"] = workload.top_k
    if workload.min_p > 0:
        body["min_p"] = workload.min_p
    if workload.seed == "per_request":
        body["seed"] = spec.index
    if workload.stream:
        body["stream_options"] = {"include_usage": True}
    if workload.api == "chat":
        body["messages"] = [{"role": "user", "content": spec.prompt}]
    else:
        body["prompt"] = spec.prompt
    return body
