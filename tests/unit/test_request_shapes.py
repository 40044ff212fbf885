"""The request shapes real OpenAI clients send (`targets.server.api`, `targets.server.job`):
chat content as a list of text parts, `stop` sequences cut from the text as it streams, usage on
every chunk, and the options this server cannot honour refused by name (real GPT-2 tokenizer)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from targets.server.api import (
    MAX_STOP,
    APIError,
    ChatRequest,
    CompletionRequest,
    Limits,
    chat_prompt,
    parse_request,
)
from targets.server.job import Job, ServedModel
from targets.server.text import StopText


def parse(body: dict[str, Any], kind: str = "completions") -> CompletionRequest | ChatRequest:
    return parse_request(json.dumps(body).encode(), kind, Limits())  # type: ignore[arg-type]


def refused(body: dict[str, Any], kind: str = "completions") -> APIError:
    with pytest.raises(APIError) as info:
        parse(body, kind)
    return info.value


def chat(*contents: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": c} for c in contents]}


def test_text_parts_read_as_the_same_prompt_as_a_string() -> None:
    parts = parse(chat([{"type": "text", "text": "What is"}, {"type": "text", "text": "2+2?"}]),
                  "chat")
    plain = parse(chat("What is\n2+2?"), "chat")
    assert isinstance(parts, ChatRequest) and isinstance(plain, ChatRequest)
    assert chat_prompt(parts.messages) == chat_prompt(plain.messages)
    assert parts.messages[0].text() == "What is\n2+2?"


@pytest.mark.parametrize(("part", "named"), [
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "'image_url'"),
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "'input_audio'"),
    ({"type": "text"}, "needs its text"),
])
def test_a_part_that_is_not_text_is_refused_by_name(part: dict[str, Any], named: str) -> None:
    error = refused(chat("first", [{"type": "text", "text": "look:"}, part]), "chat")
    assert (error.status, error.param) == (400, "messages")
    assert error.message.startswith("messages.1.content.1")
    assert named in error.message


def test_unserved_options_set_to_null_or_off_are_accepted() -> None:
    nulls = {"logprobs": None, "echo": None, "presence_penalty": None, "stop": None,
             "user": None, "best_of": 1}
    assert isinstance(parse({"prompt": "hi", **nulls}), CompletionRequest)
    assert isinstance(parse({**chat("hi"), "logprobs": None, "top_logprobs": None}, "chat"),
                      ChatRequest)


def test_an_empty_list_of_parts_is_refused() -> None:
    error = refused(chat([]), "chat")
    assert error.status == 400 and "must not be empty" in error.message


def test_client_fields_are_accepted() -> None:
    req = parse({**chat("hi"), "user": "user-42", "n": 1, "max_completion_tokens": 3,
                 "stream": True, "stream_options": {"include_usage": True,
                                                    "continuous_usage_stats": True},
                 "logprobs": False, "top_logprobs": 0, "presence_penalty": 0,
                 "frequency_penalty": None}, "chat")
    assert isinstance(req, ChatRequest)
    assert req.user == "user-42" and req.max_completion_tokens == 3
    assert req.stream_options is not None and req.stream_options.continuous_usage_stats


@pytest.mark.parametrize(("kind", "field", "value"), [
    ("completions", "logprobs", 1), ("completions", "logprobs", 0), ("completions", "echo", True),
    ("chat", "logprobs", True), ("chat", "top_logprobs", 2),
    ("completions", "presence_penalty", 0.5), ("chat", "frequency_penalty", -1.0),
])
def test_options_not_served_are_refused_by_name(kind: str, field: str, value: Any) -> None:
    body = chat("hi") if kind == "chat" else {"prompt": "hi"}
    error = refused({**body, field: value}, kind)
    assert (error.status, error.param, error.code) == (400, field, "unsupported_parameter")
    assert error.message.startswith(f"{field}: not supported")


@pytest.mark.parametrize(("stop", "why"), [
    (["a"] * (MAX_STOP + 1), f"at most {MAX_STOP}"), ("", "must not be empty"),
    (["x", ""], "must not be empty")])
def test_bad_stop_lists_are_400_naming_stop(stop: Any, why: str) -> None:
    error = refused({"prompt": "hi", "stop": stop})
    assert (error.status, error.param) == (400, "stop") and why in error.message


def feed(stops: list[str], pieces: list[str]) -> tuple[list[str], str, bool]:
    cut = StopText(stops)
    out = [cut.push(p) for p in pieces]
    return out, cut.flush(), cut.hit


def test_stop_text_cuts_before_the_first_stop_and_sends_nothing_after() -> None:
    out, rest, hit = feed(["END", "\n\n"], ["Hello", " wor", "ld", "\n", "\nmore", "END"])
    assert "".join(out) + rest == "Hello world"
    assert hit


def test_stop_text_holds_a_possible_start_and_releases_it_when_it_is_not_one() -> None:
    out, rest, hit = feed(["STOP"], ["a S", "T", "x", " b ST"])
    assert out == ["a ", "", "STx", " b "]  # "S", "ST" held while they might begin "STOP"
    assert (rest, hit) == ("ST", False)  # the end came first: what was held is output


def test_stop_text_finds_the_earliest_of_several_stops_in_one_piece() -> None:
    out, _, hit = feed(["world", "lo"], ["Hello world"])
    assert out == ["Hel"] and hit


def test_no_stops_pass_every_piece_through() -> None:
    assert feed([], ["a", "", "b"]) == (["a", "", "b"], "", False)


@pytest.fixture
def model(tokenizer: Any) -> ServedModel:
    return ServedModel(name="tiny", max_context=1024, eos_token_id=tokenizer.eos_token_id,
                       tokenizer=tokenizer)


def run_job(model: ServedModel, body: dict[str, Any], text: str) -> tuple[Job, list[bytes]]:
    """A job fed the tokens of `text` one by one, as a pattern's generation would, until it
    reports `stopped` (as the request flow does)."""
    request = parse(body)
    job = Job.create("completions", request, model, Limits())
    chunks = []
    for token in model.tokenizer.encode(text, add_special_tokens=False):
        chunks.append(job.on_token(token))
        if job.stopped:
            break
    return job, chunks


def test_a_job_ends_at_a_stop_with_finish_stop_and_counts_the_tokens_made(
        model: ServedModel) -> None:
    job, chunks = run_job(model, {"prompt": "Q", "max_tokens": 50, "stop": ["Paris"]},
                          "The capital of France is Paris. It is large.")
    body = job.response(model.eos_token_id)
    assert body["choices"][0]["text"] == "The capital of France is "
    assert body["choices"][0]["finish_reason"] == "stop"
    made = len(model.tokenizer.encode("The capital of France is Paris", add_special_tokens=False))
    assert body["usage"]["completion_tokens"] == len(job.tokens) == made == len(chunks)


def test_without_a_stop_the_finish_stays_length(model: ServedModel) -> None:
    job, _ = run_job(model, {"prompt": "Q", "max_tokens": 50, "stop": "Rome"},
                     "The capital of France is Paris.")
    body = job.response(model.eos_token_id)
    assert body["choices"][0]["text"] == "The capital of France is Paris."
    assert body["choices"][0]["finish_reason"] == "length"


def payload(chunk: bytes) -> dict[str, Any]:
    data = json.loads(chunk.decode().removeprefix("data: "))
    assert isinstance(data, dict)
    return data


def test_continuous_usage_puts_the_running_count_on_every_chunk(model: ServedModel) -> None:
    opts = {"include_usage": True, "continuous_usage_stats": True}
    job, chunks = run_job(model, {"prompt": "Hello world", "max_tokens": 50, "stream": True,
                                  "stream_options": opts}, "one two three")
    counts = [payload(c)["usage"] for c in chunks]
    assert [u["completion_tokens"] for u in counts] == [1, 2, 3]
    assert {u["prompt_tokens"] for u in counts} == {2}
    tail = [payload(p.encode() + b"\n\n") for p in job.tail(model.eos_token_id).decode()
            .split("\n\n") if p.startswith("data: {")]
    assert [t["usage"]["completion_tokens"] for t in tail] == [3, 3]  # closing chunk, usage


def test_usage_is_only_on_the_last_chunk_without_continuous_stats(model: ServedModel) -> None:
    _, chunks = run_job(model, {"prompt": "Hello world", "max_tokens": 50, "stream": True,
                                  "stream_options": {"include_usage": True}}, "one two")
    assert all("usage" not in payload(c) for c in chunks)
