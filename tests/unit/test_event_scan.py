"""The builtin driver's fast SSE path gives the reference parser's answers
(`harness.drivers.sse`)."""

from __future__ import annotations

import json

import pytest

from harness.drivers.builtin.event_scan import EventScanner, classify
from harness.drivers.sse import SSEParser, read_chunk
from targets.server.api import Formatter

PAYLOADS = [
    b"[DONE]",
    b'{"id":"c","object":"text_completion","choices":[{"index":0,"text":" hi",'
    b'"logprobs":null,"finish_reason":null}]}',
    b'{"id":"c","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":null}]}',
    b'{"id":"c","choices":[{"index":0,"text":"","finish_reason":"length"}]}',
    b'{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":7}}',
    b'{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"finish_reason":null}]}',
    b'{"id":"c","choices":[{"index":0,"delta":{"content":" yo"},"finish_reason":null}]}',
    b'{"id": "c", "choices": [{"index": 0, "text": " x", "finish_reason": null}]}',
    b'{"id":"c","choices":[{"index":0,"text":" x","finish_reason":null}],'
    b'"usage":{"completion_tokens":1}}',
    b'{"error":{"message":"boom","type":"server_error"}}',
    json.dumps({"choices": [{"index": 0, "text": 'said "finish_reason":null',
                             "finish_reason": "stop"}]}, separators=(",", ":")).encode(),
    b"not json",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_classify_agrees_with_the_reference_parser(payload: bytes) -> None:
    fast, ref = classify(payload), read_chunk(payload.decode())
    assert (fast.token, fast.done, fast.usage_completion_tokens, fast.error) == (
        ref.token, ref.done, ref.usage_completion_tokens, ref.error)


def real_stream(kind: str) -> bytes:
    fmt = Formatter(kind, "m", include_usage=True)  # type: ignore[arg-type]  # a Kind literal
    return b"".join(fmt.chunk(t) for t in (" a", "", " é")) + fmt.tail("length", 4, 3)


STREAMS = [
    real_stream("completions"),
    real_stream("chat"),
    b": keep-alive\n\ndata: {\"a\":1}\n\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n",
    b'data: {"choices":[{"text":"x","finish_reason":null}]}\r\n\r\ndata: [DONE]\r\n\r\n',
    b'data: {"choices":[{"text":"x","finish_reason":null}]}\n\ndata: [DONE]',
]


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_scanner_yields_the_reference_payloads_whatever_the_reads(stream: bytes,
                                                                   step: int) -> None:
    reference = SSEParser()
    expected = [p.encode() for p in reference.feed(stream)] + [
        p.encode() for p in reference.close()]
    scanner = EventScanner()
    got: list[bytes] = []
    for i in range(0, len(stream), step):
        got += scanner.feed(stream[i:i + step])
    got += scanner.close()
    assert got == expected
