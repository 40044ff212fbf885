"""Workload: prompts of exact GPT-2 token counts, deterministic by (seed, index); request bodies."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from harness.scenario.types import Workload
from harness.workload.prompts import (
    BLOCK,
    HEAD_TOKENS,
    PromptFactory,
    RequestSpec,
    request_body,
    word_pool,
)


def n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


@pytest.mark.parametrize("length", [1, 7, 128, 1000])
def test_prompt_has_exact_token_count(tokenizer: Any, length: int) -> None:
    factory = PromptFactory(tokenizer, Workload(prompt_tokens=length), seed=1)
    for index in range(3):
        spec = factory.get(index)
        assert spec.prompt_tokens == length
        assert n_tokens(tokenizer, spec.prompt) == length
        assert spec.index == index


def test_explicit_lengths_override_the_workload(tokenizer: Any) -> None:
    factory = PromptFactory(tokenizer, Workload(prompt_tokens=128, output_tokens=64), seed=1)
    spec = factory.get(4, prompt_tokens=9, output_tokens=5)
    assert (spec.prompt_tokens, spec.max_tokens) == (9, 5)
    assert n_tokens(tokenizer, spec.prompt) == 9


def test_every_pool_word_is_one_token(tokenizer: Any) -> None:
    pool = word_pool(tokenizer)
    assert len(pool) == 2000
    assert len(set(pool)) == 2000
    assert all(w.startswith(" ") for w in pool)
    assert [w for w in pool if n_tokens(tokenizer, w) != 1] == []


def test_same_seed_and_index_give_the_same_request(tokenizer: Any) -> None:
    wl = Workload(prompt_tokens=32)
    one = PromptFactory(tokenizer, wl, seed=42)
    other = PromptFactory(tokenizer, wl, seed=42)
    later_first = [other.get(i) for i in (3, 0, 2, 1)]  # order of calls must not matter
    assert one.batch(4) == sorted(later_first, key=lambda s: s.index)


def test_index_and_seed_change_the_prompt(tokenizer: Any) -> None:
    wl = Workload(prompt_tokens=32)
    prompts = [s.prompt for s in PromptFactory(tokenizer, wl, seed=42).batch(20)]
    assert len(set(prompts)) == 20
    other_seed = [s.prompt for s in PromptFactory(tokenizer, wl, seed=43).batch(20)]
    assert set(prompts).isdisjoint(other_seed)


def test_stdev_varies_lengths_around_the_mean(tokenizer: Any) -> None:
    wl = Workload(prompt_tokens=64, prompt_tokens_stdev=16, output_tokens=32,
                  output_tokens_stdev=8)
    specs = PromptFactory(tokenizer, wl, seed=5).batch(200)
    prompt_lens = [s.prompt_tokens for s in specs]
    output_lens = [s.max_tokens for s in specs]
    assert len(set(prompt_lens)) > 10
    assert len(set(output_lens)) > 5
    # Standard error of the mean is 16/sqrt(200) = 1.1 and 8/sqrt(200) = 0.6: bounds are > 4.5 SE.
    assert 59 <= statistics.mean(prompt_lens) <= 69
    assert 29 <= statistics.mean(output_lens) <= 35
    assert 12 <= statistics.stdev(prompt_lens) <= 20
    assert all(n_tokens(tokenizer, s.prompt) == s.prompt_tokens for s in specs)


def test_without_stdev_every_length_is_the_mean(tokenizer: Any) -> None:
    specs = PromptFactory(tokenizer, Workload(prompt_tokens=20, output_tokens=7), seed=5).batch(30)
    assert {(s.prompt_tokens, s.max_tokens) for s in specs} == {(20, 7)}


def test_wide_stdev_never_goes_below_one_token(tokenizer: Any) -> None:
    wl = Workload(prompt_tokens=2, prompt_tokens_stdev=50, output_tokens=2,
                  output_tokens_stdev=50)
    specs = PromptFactory(tokenizer, wl, seed=9).batch(100)
    assert min(s.prompt_tokens for s in specs) == 1
    assert min(s.max_tokens for s in specs) == 1


class CharTokenizer:
    """A fake whose words are single 'tokens' in the vocabulary but encode one token per char."""

    def get_vocab(self) -> dict[str, int]:
        words = [f"Ġ{a}{b}{c}" for a in "abcde" for b in "abcde" for c in "abcde"]
        return {w: i for i, w in enumerate(words)}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(ch) for ch in text]


def test_prompt_that_does_not_encode_to_its_length_raises() -> None:
    factory = PromptFactory(CharTokenizer(), Workload(prompt_tokens=3), seed=1)
    with pytest.raises(ValueError, match="built for 3 tokens encodes to 12"):
        factory.get(0)


def test_tokenizer_with_too_few_words_raises() -> None:
    class Tiny(CharTokenizer):
        def get_vocab(self) -> dict[str, int]:
            return {"Ġcat": 0, "Ġdog": 1, "x": 2}

    with pytest.raises(ValueError, match="too few single-token words"):
        word_pool(Tiny())


SPEC = RequestSpec(index=3, prompt=" the river", prompt_tokens=2, max_tokens=16)


def test_completions_body_sends_no_seed_by_default() -> None:
    wl = Workload(api="completions", stream=True, temperature=0.0, ignore_eos=True)
    assert request_body(SPEC, wl, "tiny") == {
        "model": "tiny", "max_tokens": 16, "temperature": 0.0, "ignore_eos": True,
        "stream": True, "stream_options": {"include_usage": True},
        "prompt": " the river",
    }


def test_chat_body_with_per_request_seed() -> None:
    wl = Workload(api="chat", stream=True, temperature=0.7, ignore_eos=False,
                  seed="per_request")
    assert request_body(SPEC, wl, "tiny") == {
        "model": "tiny", "max_tokens": 16, "temperature": 0.7, "ignore_eos": False,
        "stream": True, "seed": 3, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": " the river"}],
    }


def test_a_nucleus_below_one_is_sent_as_top_p() -> None:
    wl = Workload(temperature=0.8, top_p=0.95)
    assert request_body(SPEC, wl, "tiny")["top_p"] == 0.95
    assert "top_p" not in request_body(SPEC, Workload(temperature=0.8), "tiny")


def test_top_k_and_min_p_are_sent_only_when_set() -> None:
    body = request_body(SPEC, Workload(temperature=0.8, top_k=40, min_p=0.05), "tiny")
    assert (body["top_k"], body["min_p"]) == (40, 0.05)
    plain = request_body(SPEC, Workload(temperature=0.8), "tiny")
    assert "top_k" not in plain and "min_p" not in plain


def test_non_streaming_body_has_no_stream_options() -> None:
    body = request_body(SPEC, Workload(stream=False), "tiny")
    assert body["stream"] is False
    assert "stream_options" not in body
    assert body["prompt"] == " the river"


def test_unique_prompts_are_exact_distinct_and_share_no_first_tokens(tokenizer: Any) -> None:
    wl = Workload(prompt_tokens=24, prompt_tokens_stdev=6)
    factory = PromptFactory(tokenizer, wl, seed=3)
    indices = [*range(600), BLOCK, BLOCK + 1, 5 * BLOCK + 7]  # crosses the 256 bodies
    specs = [factory.unique(i) for i in indices]
    assert all(n_tokens(tokenizer, s.prompt) == s.prompt_tokens for s in specs)
    assert len({s.prompt for s in specs}) == len(specs)
    heads = [tuple(tokenizer.encode(s.prompt, add_special_tokens=False)[:HEAD_TOKENS])
             for s in specs]
    assert len(set(heads)) == len(specs)  # no shared prefix block for a prefix cache
    again = PromptFactory(tokenizer, wl, seed=3)
    assert [again.unique(i) for i in reversed(indices)][::-1] == specs  # order-free


def test_next_block_hands_out_disjoint_blocks(tokenizer: Any) -> None:
    factory = PromptFactory(tokenizer, Workload(prompt_tokens=8), seed=1)
    assert [factory.next_block() for _ in range(3)] == [0, BLOCK, 2 * BLOCK]
