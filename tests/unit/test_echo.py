"""The zero-work `echo` target labels its answers as OpenAI does, for both APIs (its shape is
what a driver calibrated against it parses): a completion is `text_completion`, a chat reply
`chat.completion`, each chat stream chunk `chat.completion.chunk` with a `delta`."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from targets.echo import create_app
from targets.server.config import ServeConfig

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def post(path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON body, or the stream's chunks without `[DONE]`."""
    with TestClient(create_app(ServeConfig("echo"))) as client:
        reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    if not body.get("stream"):
        return [reply.json()]
    events = [e.removeprefix("data: ") for e in reply.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_a_chat_reply_is_a_chat_completion() -> None:
    (body,) = post("/v1/chat/completions", CHAT)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": " echo" * 3}


def test_chat_stream_chunks_are_chat_completion_chunks_with_deltas() -> None:
    chunks = post("/v1/chat/completions", {**CHAT, "stream": True,
                                           "stream_options": {"include_usage": True}})
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    choices = [c["choices"][0] for c in chunks if c["choices"]]
    assert [c["delta"]["content"] for c in choices] == [" echo"] * 3 + [""]
    assert [c["finish_reason"] for c in choices][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


def test_a_completion_is_a_text_completion() -> None:
    (body,) = post("/v1/completions", {"prompt": "hi", "max_tokens": 2})
    assert body["object"] == "text_completion" and body["choices"][0]["text"] == " echo" * 2
    chunks = post("/v1/completions", {"prompt": "hi", "max_tokens": 2, "stream": True})
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert [c["choices"][0]["text"] for c in chunks] == [" echo", " echo", ""]
