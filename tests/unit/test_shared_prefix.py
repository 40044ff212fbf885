"""Shared-prefix prompts and drawn lengths in `PromptFactory`: N prefixes × distinct suffixes,
exact token counts, lengths clipped to the context."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any

from harness.scenario.types import LoadPoint, Workload
from harness.workload.lengths import Lengths
from harness.workload.prompts import HEAD_TOKENS, PromptFactory
from harness.workload.request_pool import RequestPool
from tests.jobs import job_for


def n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


SHARED = Workload(prompt_tokens=24, output_tokens=8, prefixes=4, prefix_tokens=100)


def test_prompts_are_one_of_n_prefixes_and_a_distinct_suffix(tokenizer: Any) -> None:
    factory = PromptFactory(tokenizer, SHARED, seed=3)
    specs = [factory.unique(i) for i in range(80)]
    prefixes = [factory.prefix(k) for k in range(4)]
    assert len(set(prefixes)) == 4
    assert all(n_tokens(tokenizer, p) == 100 for p in prefixes)
    assert Counter(s.prefix for s in specs).keys() == {0, 1, 2, 3}  # every prefix is used
    for spec in specs:
        assert spec.prefix is not None
        assert spec.prompt.startswith(prefixes[spec.prefix])
        assert spec.prompt_tokens == 124 == n_tokens(tokenizer, spec.prompt)
    suffixes = [s.prompt[len(prefixes[s.prefix or 0]):] for s in specs]
    assert len(set(suffixes)) == len(suffixes)
    heads = [tuple(tokenizer.encode(x, add_special_tokens=False)[:HEAD_TOKENS]) for x in suffixes]
    assert len(set(heads)) == len(heads)  # suffixes differ within their first tokens


def test_drawn_suffix_lengths_are_exact_and_prefix_is_counted(tokenizer: Any) -> None:
    wl = replace(SHARED, prompt_lengths=Lengths("uniform", low=5, high=40))
    factory = PromptFactory(tokenizer, wl, seed=3)
    specs = [factory.unique(i) for i in range(60)]
    assert len({s.prompt_tokens for s in specs}) > 10
    assert all(105 <= s.prompt_tokens <= 140 for s in specs)
    assert all(s.prompt_tokens == n_tokens(tokenizer, s.prompt) for s in specs)


def test_the_same_seed_builds_the_same_shared_prompts(tokenizer: Any) -> None:
    one = [PromptFactory(tokenizer, SHARED, seed=3).unique(i) for i in range(10)]
    again = PromptFactory(tokenizer, SHARED, seed=3)
    assert [again.unique(i) for i in reversed(range(10))][::-1] == one
    other = PromptFactory(tokenizer, SHARED, seed=4)
    assert other.prefix(0) != PromptFactory(tokenizer, SHARED, seed=3).prefix(0)


def test_lengths_are_clipped_to_the_context_prefix_included(tokenizer: Any) -> None:
    wl = replace(SHARED, prompt_lengths=Lengths("fixed", 500),
                 output_lengths=Lengths("fixed", 300))
    factory = PromptFactory(tokenizer, wl, seed=3, context=512)
    spec = factory.unique(0)
    assert spec.prompt_tokens == 511 == n_tokens(tokenizer, spec.prompt)  # 100 shared + 411
    assert spec.max_tokens == 1
    plain = PromptFactory(tokenizer, Workload(prompt_tokens=200, output_tokens=400), 3,
                          context=512)
    assert (plain.get(0).prompt_tokens, plain.get(0).max_tokens) == (200, 312)


def test_context_defaults_to_the_tokenizer_limit(tokenizer: Any) -> None:
    assert PromptFactory(tokenizer, Workload(), seed=1).context == tokenizer.model_max_length


def test_a_length_table_draws_whole_rows(tokenizer: Any) -> None:
    rows = ((10, 3), (40, 7), (25, 12))
    factory = PromptFactory(tokenizer, Workload(length_table=rows), seed=2)
    pairs = {(s.prompt_tokens, s.max_tokens) for s in (factory.unique(i) for i in range(60))}
    assert pairs == set(rows)


def test_request_i_of_every_point_draws_the_same_lengths(tokenizer: Any) -> None:
    wl = replace(SHARED, prompt_lengths=Lengths("lognormal", 30, 20),
                 output_lengths=Lengths("lognormal", 64, 48))
    factory = PromptFactory(tokenizer, wl, seed=3)
    first, second = factory.next_block(), factory.next_block()
    one = [factory.unique(first + i) for i in range(30)]
    two = [factory.unique(second + i) for i in range(30)]
    shape = [(s.prompt_tokens, s.max_tokens, s.prefix) for s in one]
    assert shape == [(s.prompt_tokens, s.max_tokens, s.prefix) for s in two]
    assert len(set(shape)) > 20  # the draws vary from request to request
    assert not {s.prompt for s in one} & {s.prompt for s in two}  # the prompts never repeat


def test_every_driver_sends_the_drawn_lengths_and_prefixes_from_the_pool(tokenizer: Any) -> None:
    """k6 and locust send `RequestPool.bodies` as they are, the builtin driver too."""
    wl = replace(SHARED, output_lengths=Lengths("lognormal", 64, 48))
    prompts = PromptFactory(tokenizer, wl, seed=3)
    point = LoadPoint("c4", "closed", duration_s=1, warmup_s=0, concurrency=4, max_requests=40)
    job = job_for(point, prompts=prompts, seed=3)
    pool = RequestPool(job, None)
    bodies = [json.loads(b) for b in pool.bodies]
    assert [b["max_tokens"] for b in bodies] == [s.max_tokens for s in pool.specs]
    assert len({b["max_tokens"] for b in bodies}) > 10
    assert all(b["prompt"].startswith(prompts.prefix(s.prefix or 0))
               for b, s in zip(bodies, pool.specs, strict=True))
