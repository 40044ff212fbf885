"""The API's edge (`targets.server.api`): range checks that keep unsafe values away from the
sampler, 415 / 404 in OpenAI's shape, and a detokenizer that never loses text (real GPT-2
tokenizer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from targets.server.api import (
    MAX_SEED,
    MIN_TEMPERATURE,
    MIN_TOP_P,
    APIError,
    Limits,
    check_content_type,
    check_model,
    parse_request,
    prompt_ids,
)
from targets.server.text import Detokenizer

LIMITS = Limits()


def refused(body: bytes | dict[str, Any]) -> APIError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(APIError) as info:
        parse_request(raw, "completions", LIMITS)
    return info.value


@pytest.mark.parametrize(("field", "value"), [
    ("seed", 2**64), ("seed", MAX_SEED + 1), ("seed", -1),
    ("temperature", 2.5), ("temperature", -0.1),
    ("top_p", 0), ("top_p", 1.5), ("top_p", -1e-9),
    ("max_tokens", -5), ("max_tokens", 0), ("n", 2),
    ("top_k", -2), ("top_k", 1.5), ("min_p", -0.1), ("min_p", 1.5),
])
def test_out_of_range_fields_are_400_naming_the_field(field: str, value: float) -> None:
    error = refused({"prompt": "hi", field: value})
    assert (error.status, error.param) == (400, field)
    assert error.body()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b'{"prompt": "hi", "temperature": NaN}',
                                 b'{"prompt": "hi", "top_p": Infinity}',
                                 b'{"prompt": "hi", "seed": -Infinity}'])
def test_nan_and_infinity_are_not_json(raw: bytes) -> None:
    assert refused(raw).status == 400


def test_the_largest_seed_is_accepted() -> None:
    req = parse_request(json.dumps({"prompt": "hi", "seed": MAX_SEED}).encode(),
                        "completions", LIMITS)
    assert req.seed == MAX_SEED


@pytest.mark.parametrize(("temperature", "top_p", "expected"), [
    (1e-45, 1.0, (0.0, 1.0)),  # would overflow the logits: greedy
    (MIN_TEMPERATURE / 2, 0.9, (0.0, 1.0)),
    (0.7, 5e-324, (0.0, 1.0)),  # the nucleus is the top token: greedy
    (0.7, 1e-46, (0.0, 1.0)),
    (MIN_TEMPERATURE, MIN_TOP_P, (MIN_TEMPERATURE, MIN_TOP_P)),  # at the bounds: sampled
    (0.7, 0.9, (0.7, 0.9)),
])
def test_tiny_temperature_or_top_p_samples_as_greedy(tokenizer: Any, temperature: float,
                                                      top_p: float,
                                                      expected: tuple[float, float]) -> None:
    body = {"prompt": "hi", "temperature": temperature, "top_p": top_p, "seed": 3}
    req = parse_request(json.dumps(body).encode(), "completions", LIMITS)
    _, params = prompt_ids(req, tokenizer, 2048, LIMITS)
    assert (params.temperature, params.top_p) == expected
    assert params.seed == 3


@pytest.mark.parametrize(("temperature", "top_k", "min_p", "expected"), [
    (0.8, 40, 0.05, (40, 0.05)),
    (0.8, -1, 0.0, (0, 0.0)),  # vLLM's "every token"
    (0.8, 0, 1.0, (0, 1.0)),  # min_p 1: only the most likely tokens stay (still sampled)
    (0.0, 40, 0.05, (0, 0.0)),  # greedy: the filters cannot change the argmax, none is run
])
def test_top_k_and_min_p_reach_the_sampler(tokenizer: Any, temperature: float, top_k: int,
                                           min_p: float, expected: tuple[int, float]) -> None:
    body = {"prompt": "hi", "temperature": temperature, "top_k": top_k, "min_p": min_p}
    req = parse_request(json.dumps(body).encode(), "completions", LIMITS)
    _, params = prompt_ids(req, tokenizer, 2048, LIMITS)
    assert (params.top_k, params.min_p) == expected


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/vnd.api+json", None])
def test_json_content_types_pass(ctype: str | None) -> None:
    check_content_type(ctype)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", ""])
def test_other_content_types_are_415(ctype: str) -> None:
    with pytest.raises(APIError) as info:
        check_content_type(ctype)
    assert (info.value.status, info.value.code) == (415, "unsupported_media_type")


def test_unknown_model_is_404_model_not_found() -> None:
    check_model(None, ("tiny", "tiny"))
    check_model("tiny", ("tiny", "/models/tiny"))
    check_model("/models/tiny", ("tiny", "/models/tiny"))
    with pytest.raises(APIError) as info:
        check_model("no-such-model", ("tiny", "tiny"))
    body = info.value.body()["error"]
    assert info.value.status == 404
    assert (body["code"], body["param"]) == ("model_not_found", "model")
    assert body["message"] == "The model `no-such-model` does not exist. Valid aliases: tiny."


def stream_text(tokenizer: Any, ids: list[int]) -> tuple[list[str], str]:
    detok = Detokenizer(tokenizer)
    pieces = [detok.push(t) for t in ids]
    return pieces, detok.flush()


def test_a_character_split_across_tokens_is_sent_once_complete(tokenizer: Any) -> None:
    ids = tokenizer.encode("日本語 ok", add_special_tokens=False)
    partial = [t for t in ids if tokenizer.decode([t]).endswith("\ufffd")]
    assert partial, "the tokenizer splits these characters into byte tokens"
    pieces, rest = stream_text(tokenizer, ids)
    assert "".join(pieces) + rest == "日本語 ok"
    assert all("\ufffd" not in p for p in pieces)
    assert rest == ""


def test_bytes_that_never_form_a_character_are_sent_not_lost(tokenizer: Any) -> None:
    lone = [t for t in range(256) if tokenizer.decode([t]) == "\ufffd"]
    ids = lone[:1] * 64  # the same lone byte, 64 times: its decode ends in U+FFFD forever
    pieces, rest = stream_text(tokenizer, ids)
    text = "".join(pieces) + rest
    assert text == tokenizer.decode(ids)
    assert any(pieces), "text goes out while the stream runs, not only at its end"


def test_flush_sends_a_character_cut_by_the_end_of_the_stream(tokenizer: Any) -> None:
    ids = tokenizer.encode("ok 日", add_special_tokens=False)[:-1]  # the last byte is missing
    pieces, rest = stream_text(tokenizer, ids)
    assert "".join(pieces) == "ok"
    assert rest == tokenizer.decode(ids)[2:] and rest.endswith("\ufffd")
