"""Greedy decoding gives the same tokens on every target: the real `tiny` model, compared with
`HFEngine.generate` run in this process on the same model folder.

The prompts have different lengths and are sent at the same time, so a batching target pads them
into one batch: its output must still equal each prompt's single-request output.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from targets.model.engine import GenParams, ModelEngine
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.text import Detokenizer
from tests.contract.client import Stream, request, stream_text, token_payloads
from tests.contract.conftest import Fleet, supports, target_params

pytestmark = pytest.mark.parametrize("target", target_params())

PROMPTS = [
    ("Hello world", 12),
    ("The quick brown fox jumps over the lazy dog while the cat sleeps", 9),
    ("a", 16),
]


@pytest.fixture(scope="module")
def reference() -> ModelEngine:
    configure_threads(1)
    return load_engine("tiny", "cpu")


def expected(engine: ModelEngine, prompt: str, max_tokens: int) -> tuple[str, int, str]:
    """(text, completion tokens, finish_reason) of a single greedy request in this process."""
    ids = engine.tokenizer.encode(prompt, add_special_tokens=False)
    tokens = list(engine.generate(ids, GenParams(max_tokens=max_tokens, temperature=0.0)))
    detok = Detokenizer(engine.tokenizer)
    text = "".join(detok.push(t) for t in tokens)
    finish = "stop" if tokens[-1] == engine.eos_token_id else "length"
    return text, len(tokens), finish


def test_greedy_tokens_equal_single_request_generate(fleet: Fleet, target: str,
                                                     reference: ModelEngine) -> None:
    url = fleet.get(target).url
    want = [expected(reference, prompt, n) for prompt, n in PROMPTS]

    def whole(i: int) -> Any:
        prompt, n = PROMPTS[i]
        return request(url, "POST", "/v1/completions",
                       {"prompt": prompt, "max_tokens": n, "temperature": 0},
                       fleet.auth(target)).json()

    def streamed(i: int) -> list[str]:
        prompt, n = PROMPTS[i]
        return Stream(url, {"prompt": prompt, "max_tokens": n, "temperature": 0},
                      fleet.auth(target)).rest()

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        bodies = list(pool.map(whole, range(len(PROMPTS))))
        streams = list(pool.map(streamed, range(len(PROMPTS))))
    for (text, count, finish), body, payloads in zip(want, bodies, streams, strict=True):
        assert body["choices"][0]["text"] == text
        assert body["usage"]["completion_tokens"] == count
        assert body["choices"][0]["finish_reason"] == finish
        assert stream_text(payloads) == text
        if supports(target, "sse_framing"):
            assert len(token_payloads(payloads)) == count  # one chunk per token

