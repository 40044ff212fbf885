"""Seventeen malformed or hostile requests, each answered in OpenAI's shape with the right status,
and none harms the server or the requests running beside it (every local target).

The cases are the ones probed from outside (issue 15): broken JSON, wrong types, missing fields,
out-of-range numbers (2^64 seed, tiny top_p and temperature, NaN), a wrong Content-Type and an
unknown model name. A tiny positive temperature or top_p is not an error: it samples as greedy
(`targets.server.api.MIN_TEMPERATURE`, `MIN_TOP_P`), so it is answered 200 with text.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.contract.client import Stream, request, stream_text
from tests.contract.conftest import Fleet, supports, target_params

pytestmark = pytest.mark.parametrize("target", target_params())


@dataclass(frozen=True)
class Case:
    what: str
    body: bytes | dict[str, Any]
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    param: str | None = None  # the field the error must name
    code: str | None = None


MALFORMED = [
    Case("malformed JSON", b'{"prompt": "x",', 400),
    Case("JSON array", b"[1, 2]", 400),
    Case("missing prompt", {"max_tokens": 4}, 400, param="prompt"),
    Case("prompt a number", {"prompt": 12}, 400, param="prompt"),
    Case("max_tokens a string", {"prompt": "x", "max_tokens": "many"}, 400, param="max_tokens"),
    Case("negative max_tokens", {"prompt": "x", "max_tokens": -5}, 400, param="max_tokens"),
    Case("seed 2^64", {"prompt": "x", "seed": 2**64, "temperature": 1.0}, 400, param="seed"),
    Case("negative seed", {"prompt": "x", "seed": -1, "temperature": 1.0}, 400, param="seed"),
    Case("temperature above 2", {"prompt": "x", "temperature": 5}, 400, param="temperature"),
    Case("top_p zero", {"prompt": "x", "top_p": 0}, 400, param="top_p"),
    Case("top_p above 1", {"prompt": "x", "top_p": 1.5}, 400, param="top_p"),
    Case("NaN temperature", b'{"prompt": "x", "temperature": NaN}', 400),
    Case("tiny top_p", {"prompt": "x", "top_p": 5e-324, "temperature": 1.0, "max_tokens": 4,
                        "ignore_eos": True}, 200),
    Case("tiny temperature", {"prompt": "x", "temperature": 1e-45, "max_tokens": 4,
                              "ignore_eos": True}, 200),
    Case("token id out of vocab", {"prompt": [50257 * 4]}, 400, param="prompt"),
    Case("Content-Type text/plain", {"prompt": "x", "max_tokens": 4}, 415,
         headers={"Content-Type": "text/plain"}, code="unsupported_media_type"),
    Case("unknown model", {"prompt": "x", "model": "no-such-model", "max_tokens": 4}, 404,
         param="model", code="model_not_found"),
]
VLLM_OWN = {"negative seed": "vLLM takes any signed 64-bit seed",
            "Content-Type text/plain": "vLLM reads the body whatever its Content-Type",
            "NaN temperature": "vLLM's JSON parser takes NaN"}


def check(fleet: Fleet, target: str, case: Case) -> str | None:
    """What is wrong with the answer to `case`, or None."""
    url = fleet.get(target).url
    reply = request(url, "POST", "/v1/completions", case.body,
                    {**fleet.auth(target), **case.headers})
    if not supports(target, "patternbench_errors"):  # vLLM: its own shapes, never a 5xx
        return f"{reply.status} {reply.body[:200]!r}" if reply.status >= 500 else None
    if reply.status != case.status:
        return f"{reply.status}, expected {case.status}: {reply.body[:200]!r}"
    data = reply.json()
    if case.status == 200:
        return None if data["choices"][0]["text"] else "empty text"
    error = data["error"]
    if not isinstance(error["message"], str) or error.get("type") is None:
        return f"not an OpenAI error object: {data}"
    if case.param is not None and error["param"] != case.param:
        return f"param {error['param']!r}, expected {case.param!r}"
    if case.code is not None and error["code"] != case.code:
        return f"code {error['code']!r}, expected {case.code!r}"
    return None


def test_malformed_requests_get_the_right_answer(fleet: Fleet, target: str) -> None:
    cases = [c for c in MALFORMED if (supports(target, "patternbench_errors")
                                      or c.what not in VLLM_OWN)
             and (supports(target, "bad_input_400") or c.what != "malformed JSON")]
    assert len(MALFORMED) == 17
    problems = {c.what: p for c in cases if (p := check(fleet, target, c)) is not None}
    assert problems == {}
    health = request(fleet.get(target).url, "GET", "/health")
    assert health.status == 200, "the server survived every one"


def test_hostile_requests_do_not_harm_the_streams_beside_them(fleet: Fleet,
                                                               target: str) -> None:
    """Three greedy streams run while the hostile cases arrive (capacity 4, so one slot is
    left for them); every stream ends with all its tokens and [DONE]."""
    url = fleet.get(target).url
    greedy = {"prompt": "The quick brown fox", "max_tokens": 48, "temperature": 0,
              "ignore_eos": True}

    def stream() -> list[str]:
        return Stream(url, greedy, headers=fleet.auth(target)).rest()

    with ThreadPoolExecutor(max_workers=3) as pool:
        streams = [pool.submit(stream) for _ in range(3)]
        for case in MALFORMED:
            if case.status != 200:  # the 200s would take the slot of a stream
                request(url, "POST", "/v1/completions", case.body,
                        {**fleet.auth(target), **case.headers})
        results = [s.result(timeout=300) for s in streams]
    for payloads in results:
        assert payloads[-1] == "[DONE]"
        assert not any("error" in json.loads(p) for p in payloads[:-1])
    assert len({stream_text(p) for p in results}) == 1  # greedy: the same text, unharmed
