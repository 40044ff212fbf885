"""Cross-check with a client nobody here wrote: the official `openai` Python client drives one of
our targets directly and through the `fastapi_proxy` gateway, for completions and chat, streaming
and not, and its parsed objects must carry the text, usage and finish reasons the model produced.

The model is the calibrated `sim:` fake, so the expected tokens are known exactly: the test asks
the same engine for them and decodes them with the same tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from harness.run.launcher import TargetProcess, start_proxy, start_target
from targets.model.engine import GenParams
from targets.model.load import load_engine
from targets.server.api import ChatMessage, chat_prompt

MODEL = "sim:ttft_ms=5,tpot_ms=1,gil=release"
MAX_TOKENS = 8
PROMPT = "The quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module", params=["fastapi_threadpool", "fastapi_proxy"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[TargetProcess]:
    logs: Path = tmp_path_factory.mktemp("logs")
    name: str = request.param
    if name == "fastapi_proxy":
        server = start_proxy("proxy", name, model=MODEL, device="cpu",
                             options={"pool_size": 2, "upstream": "fastapi_threadpool"},
                             log_path=logs / "proxy.log")
    else:
        server = start_target(name, name, model=MODEL, device="cpu", options={},
                              log_path=logs / f"{name}.log")
    with server:
        yield server


@pytest.fixture(scope="module")
def client(target: TargetProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=target.url + "/v1", api_key="unused", max_retries=0,
                       timeout=60) as c:
        yield c


def expected(text: str) -> tuple[int, str]:
    """(prompt token count, output text) the sim engine gives for `text` and MAX_TOKENS."""
    engine = load_engine(MODEL)
    ids = engine.tokenizer.encode(text, add_special_tokens=False)
    out = list(engine.generate(ids, GenParams(max_tokens=MAX_TOKENS)))
    assert len(out) == MAX_TOKENS
    return len(ids), engine.tokenizer.decode(out, skip_special_tokens=True)


CHAT = [ChatMessage(role="user", content=PROMPT)]


def test_models_list_names_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [load_engine(MODEL).name]
    assert models[0].object == "model"


def test_completion(client: openai.OpenAI) -> None:
    prompt_n, text = expected(PROMPT)
    c = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=MAX_TOKENS,
                                  temperature=0)
    assert c.object == "text_completion"
    assert c.model == MODEL
    (choice,) = c.choices
    assert choice.text == text
    assert choice.finish_reason == "length"
    assert c.usage is not None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (prompt_n, MAX_TOKENS)
    assert c.usage.total_tokens == prompt_n + MAX_TOKENS


def test_completion_stream(client: openai.OpenAI) -> None:
    prompt_n, text = expected(PROMPT)
    chunks = list(client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    with_choice = [ch for ch in chunks if ch.choices]
    assert len(with_choice) >= MAX_TOKENS  # one chunk per token (plus a closing one)
    assert "".join(ch.choices[0].text for ch in with_choice) == text
    finishes = [ch.choices[0].finish_reason for ch in with_choice]
    assert finishes[-1] == "length"
    assert all(f is None for f in finishes[:-1])
    assert len({ch.id for ch in chunks}) == 1
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_n, MAX_TOKENS)


def test_chat(client: openai.OpenAI) -> None:
    prompt_n, text = expected(chat_prompt(CHAT))
    c = client.chat.completions.create(model=MODEL, max_tokens=MAX_TOKENS, temperature=0,
                                       messages=[{"role": "user", "content": PROMPT}])
    assert c.object == "chat.completion"
    (choice,) = c.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == text
    assert choice.finish_reason == "length"
    assert c.usage is not None
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (prompt_n, MAX_TOKENS)


def test_chat_stream(client: openai.OpenAI) -> None:
    prompt_n, text = expected(chat_prompt(CHAT))
    chunks = list(client.chat.completions.create(
        model=MODEL, max_tokens=MAX_TOKENS, temperature=0, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": PROMPT}]))
    with_choice = [ch for ch in chunks if ch.choices]
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert "".join(ch.choices[0].delta.content or "" for ch in with_choice) == text
    assert with_choice[-1].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == MAX_TOKENS
    assert usage.prompt_tokens == prompt_n


def test_bad_request_is_a_parsed_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=10**6)
    assert info.value.status_code == 400
    body = info.value.body
    assert isinstance(body, dict) and "max_tokens" in str(body.get("message"))
