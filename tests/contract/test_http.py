"""The HTTP contract every local target keeps: bodies, streams, usage, errors, limits, auth.

Every target runs on the `tiny` model with `max_concurrency=4, max_queue=0`, an API key (the
gateway's own, not its upstream's) and `--max-tokens-cap 1024` (see conftest).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contract.client import (
    Stream,
    in_flight,
    metrics,
    request,
    stream_text,
    token_payloads,
)
from tests.contract.conftest import (
    API_KEY,
    MAX_TOKENS_CAP,
    Fleet,
    skip_unless_supported,
    supports,
    target_params,
)

pytestmark = pytest.mark.parametrize("target", target_params())


def post(fleet: Fleet, target: str, body: bytes | dict[str, Any],
         path: str = "/v1/completions") -> Any:
    return request(fleet.get(target).url, "POST", path, body, fleet.auth(target))


def test_completion_body_and_usage(fleet: Fleet, target: str) -> None:
    reply = post(fleet, target, {"prompt": "Hello world", "max_tokens": 7, "ignore_eos": True})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["finish_reason"] == "length"
    assert isinstance(body["choices"][0]["text"], str) and body["choices"][0]["text"]
    counts = {k: body["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    assert counts == {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9}

    ids = post(fleet, target, {"prompt": [15496, 995], "max_tokens": 3}).json()
    assert ids["usage"]["prompt_tokens"] == 2 and ids["usage"]["completion_tokens"] == 3

    chat = post(fleet, target, {"messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 5}, path="/v1/chat/completions")
    assert chat.status == 200, chat.body
    message = chat.json()["choices"][0]["message"]
    assert chat.json()["object"] == "chat.completion" and message["role"] == "assistant"
    assert chat.json()["usage"]["completion_tokens"] == 5


def test_stream_chunks_usage_and_done(fleet: Fleet, target: str) -> None:
    srv = fleet.get(target)
    greedy = {"max_tokens": 6, "temperature": 0, "ignore_eos": True}
    request_body = {"prompt": "Hello world", **greedy, "stream_options": {"include_usage": True}}
    stream = Stream(srv.url, request_body, fleet.auth(target))
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    framed = supports(target, "sse_framing")
    if framed:
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
    payloads = stream.rest()
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    chunks = [json.loads(p) for p in payloads[:-1]]
    if framed:
        assert len(token_payloads(payloads)) == 6  # one chunk per token, then a closing one
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["length"]
    # our framing: a usage-only chunk (empty choices); llama.cpp's: usage on the closing chunk
    usage = [c for c in chunks if (not c["choices"] if framed else c.get("usage"))]
    assert usage and usage[-1]["usage"]["completion_tokens"] == 6
    assert usage[-1]["usage"]["prompt_tokens"] == 2
    whole = post(fleet, target, {"prompt": "Hello world", **greedy}).json()
    assert stream_text(payloads) == whole["choices"][0]["text"]

    chat = Stream(srv.url, {"messages": [{"role": "user", "content": "hi"}], **greedy},
                  fleet.auth(target), path="/v1/chat/completions")
    chat_payloads = chat.rest()
    chat_chunks = [json.loads(p) for p in chat_payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chat_chunks)
    # unframed servers may close with an empty delta (llama.cpp: {} beside finish_reason)
    assert all("content" in c["choices"][0]["delta"] for c in chat_chunks
               if c["choices"] and (framed or not c["choices"][0]["finish_reason"]))
    if framed:
        assert len(token_payloads(chat_payloads)) == 6
    whole_chat = post(fleet, target, {"messages": [{"role": "user", "content": "hi"}], **greedy},
                      path="/v1/chat/completions").json()
    assert stream_text(chat_payloads) == whole_chat["choices"][0]["message"]["content"]


BAD_BODIES: list[tuple[str, bytes | dict[str, Any]]] = [
    ("not json", b"{not json"),
    ("empty body", b""),
    ("not utf-8", b"\xff\xfe\x00"),
    ("json array", b"[1, 2]"),
    ("no prompt", {"max_tokens": 5}),
    ("max_tokens a string", {"prompt": "x", "max_tokens": "many"}),
    ("max_tokens zero", {"prompt": "x", "max_tokens": 0}),
    ("temperature too high", {"prompt": "x", "temperature": 5}),
    ("prompt a number", {"prompt": 12}),
    ("prompt empty list", {"prompt": []}),
    ("token id out of vocab", {"prompt": [-1]}),
]
REFUSED_BEFORE_PARSING = {"not utf-8"}  # a framework rejects these before any handler runs


def test_bad_input_is_400_never_500(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "bad_input_400")
    for what, body in BAD_BODIES:
        reply = post(fleet, target, body)
        assert reply.status == 400, f"{what}: {reply.status} {reply.body!r}"
        if what not in REFUSED_BEFORE_PARSING or supports(target, "framework_errors"):
            assert isinstance(reply.json()["error"]["message"], str), what
    bad_chats: list[tuple[str, dict[str, Any]]] = [("no messages", {"messages": []})]
    if supports(target, "chat_content_required"):
        bad_chats.append(("message without content", {"messages": [{"role": "user"}]}))
    for what, chat_body in bad_chats:
        reply = post(fleet, target, chat_body, path="/v1/chat/completions")
        assert reply.status == 400, f"{what}: {reply.status} {reply.body!r}"


def test_limits_413_and_400(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "limits")
    over_context = post(fleet, target, {"prompt": [15496] * 2100, "max_tokens": 1})
    assert over_context.status == 413, over_context.body
    assert over_context.json()["error"]["code"] == "context_length_exceeded"
    over_cap = post(fleet, target, {"prompt": "x", "max_tokens": MAX_TOKENS_CAP + 100})
    assert over_cap.status == 400, over_cap.body
    assert over_cap.json()["error"]["param"] == "max_tokens"
    too_big = post(fleet, target, b'{"prompt": "' + b"x" * (1 << 20) + b'"}')
    assert too_big.status == 413, too_big.body[:200]
    assert "error" in too_big.json()


def test_models_lists_the_one_served_model(fleet: Fleet, target: str) -> None:
    url = fleet.get(target).url
    reply = request(url, "GET", "/v1/models", headers=fleet.auth(target))
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["object"] == "list" and len(body["data"]) == 1
    assert body["data"][0]["object"] == "model" and body["data"][0]["id"]
    assert request(url, "GET", "/v1/models").status == 401


def test_unknown_route_and_method(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "framework_errors")
    url = fleet.get(target).url
    missing = request(url, "GET", "/v1/nope", headers=fleet.auth(target))
    assert missing.status == 404 and "error" in missing.json()
    wrong = request(url, "GET", "/v1/completions", headers=fleet.auth(target))
    assert wrong.status == 405 and "error" in wrong.json()


def test_api_key_401(fleet: Fleet, target: str) -> None:
    url = fleet.get(target).url
    body = {"prompt": "x", "max_tokens": 1}
    wrong: list[dict[str, str]] = [{}, {"Authorization": "Bearer wrong"}]
    if supports(target, "bearer_only"):
        wrong.append({"Authorization": API_KEY})
    for headers in wrong:
        reply = request(url, "POST", "/v1/completions", body, headers)
        assert reply.status == 401, (headers, reply.body)
        if supports(target, "api_key_error"):
            assert reply.json()["error"]["code"] == "invalid_api_key"
    assert request(url, "GET", "/health").status == 200  # probes need no key


def test_metrics_gauges(fleet: Fleet, target: str) -> None:
    url = fleet.get(target).url
    open_metrics = supports(target, "open_metrics")
    reply = request(url, "GET", "/metrics", headers=None if open_metrics else fleet.auth(target))
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    assert in_flight(url) is not None  # what the harness's telemetry reads from every target
    skip_unless_supported(target, "patternbench_metrics")
    names = set(metrics(url))
    for name in ("patternbench_in_flight", "patternbench_queue_depth", "patternbench_batch_size",
                 "patternbench_generated_tokens_total", "patternbench_rejections_total"):
        assert name in names, f"{name} missing from /metrics"




def test_ignore_eos_gives_exact_length(fleet: Fleet, target: str) -> None:
    body = post(fleet, target, {"prompt": "Hello", "max_tokens": 20, "ignore_eos": True}).json()
    assert body["usage"]["completion_tokens"] == 20
    assert body["choices"][0]["finish_reason"] == "length"
