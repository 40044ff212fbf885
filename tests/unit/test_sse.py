"""SSE: incremental parsing at any byte boundary, and what each payload means to the driver.

The split tests use seeded `random.Random` plus exhaustive single and double cuts in place of
hypothesis, which is not a declared dev dependency of this project.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from typing import Any

import pytest

from harness.drivers.sse import DONE, Chunk, SSEParser, read_chunk


def event(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()


def completion(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion",
            "choices": [{"index": 0, "text": text, "finish_reason": finish}]}


def chat(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chat-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE = {"id": "cmpl-1", "choices": [],
         "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}

# Our servers: one chunk per token, a closing chunk with "" and finish_reason, usage, [DONE].
# "ld ✓" has a three-byte character, so some cuts land inside it.
OUR_STREAM = b"".join([
    event(completion(" Hello")),
    b": keep-alive\n\n",
    event(completion(" wor")),
    b"event: message\nid: 7\n" + event(completion("ld ✓")),
    event(completion("", "length")),
    event(USAGE),
    event("[DONE]"),
])
OUR_PAYLOADS = [json.dumps(completion(" Hello")), json.dumps(completion(" wor")),
                json.dumps(completion("ld ✓"), ensure_ascii=False),
                json.dumps(completion("", "length")), json.dumps(USAGE), "[DONE]"]


def parse(pieces: Sequence[bytes]) -> list[str]:
    parser = SSEParser()
    out: list[str] = []
    for piece in pieces:
        out += parser.feed(piece)
    return out + parser.close()


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_whole_stream_in_one_read() -> None:
    assert parse([OUR_STREAM]) == OUR_PAYLOADS


def test_every_single_cut_gives_the_same_payloads() -> None:
    for i in range(len(OUR_STREAM) + 1):
        assert parse(cut(OUR_STREAM, [i])) == OUR_PAYLOADS, f"cut at byte {i}"


def test_byte_at_a_time() -> None:
    assert parse([OUR_STREAM[i:i + 1] for i in range(len(OUR_STREAM))]) == OUR_PAYLOADS


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_random_cuts_give_the_same_payloads(crlf: bool) -> None:
    stream = OUR_STREAM.replace(b"\n", b"\r\n") if crlf else OUR_STREAM
    rng = random.Random(20261127)
    for _ in range(2000):
        points = rng.sample(range(len(stream) + 1), rng.randint(1, 40))
        assert parse(cut(stream, points)) == OUR_PAYLOADS, f"cuts at {sorted(points)}"


def test_every_cut_pair_in_a_crlf_stream() -> None:
    stream = b"data: a\r\n\r\n: c\r\ndata: \xe2\x9c\x93\r\n\r\n"
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert parse(cut(stream, [i, j])) == ["a", "✓"], f"cuts at {i}, {j}"


def test_event_is_returned_only_once_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == ["one"]
    assert parser.feed(b"data: two\n\ndata: three\n\n") == ["two", "three"]


def test_comments_and_other_fields_are_ignored() -> None:
    assert parse([b": ping\n\n", b"event: x\nid: 1\nretry: 5\n\n"]) == []
    assert parse([b"data: a\n: interleaved comment\ndata: b\n\n"]) == ["a\nb"]


def test_only_one_leading_space_is_stripped() -> None:
    assert parse([b"data:x\n\ndata:  y\n\ndata:\n\n"]) == ["x", " y", ""]


def test_blank_lines_without_data_emit_nothing() -> None:
    assert parse([b"\n\n\r\n\n"]) == []


def test_close_flushes_an_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    assert parser.close() == ["[DONE]"]
    assert SSEParser().close() == []


# --- read_chunk ----------------------------------------------------------------------------------

def test_done_marker() -> None:
    assert read_chunk("[DONE]") == DONE
    assert read_chunk("[DONE]").done


def test_completion_token() -> None:
    assert read_chunk(json.dumps(completion(" Hello"))) == Chunk(token=True, text=" Hello")


def test_empty_text_without_finish_is_a_token() -> None:
    # A token that ends mid-character is streamed as "" before the finish.
    assert read_chunk(json.dumps(completion(""))) == Chunk(token=True, text="")


def test_closing_chunk_is_not_a_token() -> None:
    assert read_chunk(json.dumps(completion("", "length"))) == Chunk(finish_reason="length")


def test_vllm_final_chunk_with_text_is_a_token() -> None:
    got = read_chunk(json.dumps(completion(" end", "stop")))
    assert got == Chunk(token=True, text=" end", finish_reason="stop")


def test_usage_chunk() -> None:
    assert read_chunk(json.dumps(USAGE)) == Chunk(usage_completion_tokens=3,
                                                  usage_prompt_tokens=5)


def test_null_usage_on_a_token_chunk() -> None:
    data = completion(" a") | {"usage": None}
    assert read_chunk(json.dumps(data)) == Chunk(token=True, text=" a")


@pytest.mark.parametrize("delta", [{"role": "assistant", "content": ""}, {"role": "assistant"},
                                   {"role": "assistant", "content": None}])
def test_chat_role_chunk_is_not_a_token(delta: dict[str, Any]) -> None:
    assert read_chunk(json.dumps(chat(delta))) == Chunk()


def test_chat_tokens_and_close() -> None:
    assert read_chunk(json.dumps(chat({"content": "Hi"}))) == Chunk(token=True, text="Hi")
    both = chat({"role": "assistant", "content": "Hi"})
    assert read_chunk(json.dumps(both)) == Chunk(token=True, text="Hi")
    assert read_chunk(json.dumps(chat({}, "stop"))) == Chunk(finish_reason="stop")


@pytest.mark.parametrize(("payload", "message"), [
    ('{"error": {"message": "server overloaded", "code": 503}}', "server overloaded"),
    ('{"error": {"code": 500}}', "{'code': 500}"),
    ('{"error": "boom"}', "boom"),
    ('[1, 2]', "SSE payload is not an object"),
    ("not json", "unparseable SSE payload: 'not json'"),
])
def test_error_payloads(payload: str, message: str) -> None:
    assert read_chunk(payload) == Chunk(error=message)


def count(stream: bytes) -> tuple[int, int | None, str]:
    """(tokens, usage completion tokens, text) as a driver would tally them."""
    tokens, usage, text = 0, None, ""
    for payload in parse([stream]):
        chunk = read_chunk(payload)
        if chunk.done:
            break
        tokens += chunk.token
        text += chunk.text
        usage = chunk.usage_completion_tokens or usage
    return tokens, usage, text


def test_our_stream_counts_match_usage() -> None:
    assert count(OUR_STREAM) == (3, 3, " Hello world ✓")


def test_vllm_stream_counts_match_usage() -> None:
    stream = b"".join([event(completion(" a")), event(completion(" b")),
                       event(completion(" c", "length")), event(USAGE), event("[DONE]")])
    assert count(stream) == (3, 3, " a b c")


def test_chat_stream_counts_match_usage() -> None:
    stream = b"".join([event(chat({"role": "assistant", "content": ""})),
                       *(event(chat({"content": t})) for t in (" a", " b", " c")),
                       event(chat({}, "length")), event(USAGE), event("[DONE]")])
    assert count(stream) == (3, 3, " a b c")
