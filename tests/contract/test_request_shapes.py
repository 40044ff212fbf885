"""The request shapes real OpenAI clients send, on every target: GuideLLM's chat content as a list
of text parts, `stop`, `user`, `n = 1`, `max_completion_tokens`, `stream_options` (with vLLM's
`continuous_usage_stats`), and `logprobs` / `echo` / penalties refused by name where a target
does not serve them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract.client import Stream, request, stream_text
from tests.contract.conftest import Fleet, skip_unless_supported, target_params

pytestmark = pytest.mark.parametrize("target", target_params())

CHAT = "/v1/chat/completions"
GREEDY = {"temperature": 0, "ignore_eos": True}


def post(fleet: Fleet, target: str, body: dict[str, Any], path: str = "/v1/completions") -> Any:
    return request(fleet.get(target).url, "POST", path, body, fleet.auth(target))


def answer(reply: Any, chat: bool = False) -> str:
    assert reply.status == 200, reply.body
    choice = reply.json()["choices"][0]
    return str(choice["message"]["content"] if chat else choice["text"])


def test_chat_content_as_text_parts_is_the_same_prompt(fleet: Fleet, target: str) -> None:
    body = {"max_tokens": 6, **GREEDY}
    plain = post(fleet, target, {**body, "messages": [
        {"role": "user", "content": "What is the capital\nof France?"}]}, CHAT)
    parts = post(fleet, target, {**body, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is the capital"}, {"type": "text", "text": "of France?"},
    ]}]}, CHAT)
    assert answer(parts, chat=True) == answer(plain, chat=True)
    # cached prompt tokens (llama.cpp's prompt_tokens_details) differ with what ran before
    def counts(usage: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}

    assert counts(parts.json()["usage"]) == counts(plain.json()["usage"])


def test_a_part_that_is_not_text_is_a_400_naming_it(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "text_only_content")
    reply = post(fleet, target, {"max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
        CHAT)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert "image_url" in error["message"] and error["param"] == "messages"


def test_client_fields_are_accepted(fleet: Fleet, target: str) -> None:
    reply = post(fleet, target, {"messages": [{"role": "user", "content": "hi"}], "user": "u-7",
                                 "n": 1, "max_completion_tokens": 3, **GREEDY}, CHAT)
    assert reply.status == 200, reply.body
    assert reply.json()["usage"]["completion_tokens"] == 3


def test_stop_ends_the_text_before_the_stop_sequence(fleet: Fleet, target: str) -> None:
    body = {"prompt": "Hello world", "max_tokens": 12, **GREEDY}
    text = answer(post(fleet, target, body))
    stop = text[5:8]  # somewhere inside the greedy output, so it must be found
    assert stop, f"greedy output too short: {text!r}"
    expected = text[:text.find(stop)]

    reply = post(fleet, target, {**body, "stop": [stop, "never in this text \u2603"]})
    assert answer(reply) == expected
    assert reply.json()["choices"][0]["finish_reason"] == "stop"
    assert reply.json()["usage"]["completion_tokens"] <= 12

    stream = Stream(fleet.get(target).url, {**body, "stop": stop}, fleet.auth(target))
    payloads = stream.rest()
    assert stream_text(payloads) == expected  # no part of the stop sequence was streamed
    finishes = [c["choices"][0]["finish_reason"] for c in map(json.loads, payloads[:-1])
                if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finishes == ["stop"] and payloads[-1] == "[DONE]"


def test_continuous_usage_stats_counts_on_every_chunk(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "continuous_usage_stats")
    options = {"include_usage": True, "continuous_usage_stats": True}
    stream = Stream(fleet.get(target).url, {"prompt": "Hello world", "max_tokens": 5, **GREEDY,
                                            "stream_options": options}, fleet.auth(target))
    chunks = [json.loads(p) for p in stream.rest()[:-1]]
    with_tokens = [c for c in chunks if c["choices"] and c["choices"][0]["text"]]
    counts = [c["usage"]["completion_tokens"] for c in with_tokens]
    assert counts == sorted(counts) and counts[-1] == 5, counts
    assert all(c["usage"]["prompt_tokens"] == 2 for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize(("path", "field", "value"), [
    ("/v1/completions", "logprobs", 2), ("/v1/completions", "echo", True),
    (CHAT, "logprobs", True), (CHAT, "presence_penalty", 0.5)])
def test_options_not_served_are_a_400_naming_them(fleet: Fleet, target: str, path: str,
                                                  field: str, value: Any) -> None:
    skip_unless_supported(target, "unserved_options")
    body: dict[str, Any] = ({"prompt": "hi"} if path != CHAT
                            else {"messages": [{"role": "user", "content": "hi"}]})
    reply = post(fleet, target, {**body, "max_tokens": 2, field: value}, path)
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == (field, "unsupported_parameter")
    assert error["message"].startswith(field)


def test_openapi_describes_the_client_fields(fleet: Fleet, target: str) -> None:
    if not target.startswith("fastapi_"):
        pytest.skip(f"{target} publishes no /openapi.json (only the FastAPI targets do)")
    doc = request(fleet.get(target).url, "GET", "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    chat = schemas["ChatRequest"]["properties"]
    assert {"stop", "user", "logprobs", "top_logprobs", "max_completion_tokens", "n"} <= set(chat)
    assert {"stop", "user", "logprobs", "echo"} <= set(schemas["CompletionRequest"]["properties"])
    assert "continuous_usage_stats" in schemas["StreamOptions"]["properties"]
    content = schemas["ChatMessage"]["properties"]["content"]["anyOf"]
    assert {"type": "array", "items": {"$ref": "#/components/schemas/ContentPart"}} in content
