"""The HTTP contract, against the real vLLM server (`make vllm`) on the tiny model's folder.

One vLLM start for the module (~65 s on idle cores, minutes on busy ones). It reuses the contract
suite's client and bad-input list, and checks what the OpenAI API and our driver rely on: bodies,
usage, streaming chunks with a usage chunk and `[DONE]`, chat, 400s with an error object, /health
during a stream, cancellation on disconnect, and that vLLM serves the *same model*: the folder
every target loads, the same prompt token counts, the same greedy output as our `HFEngine`.

Checks of `test_http.py` vLLM is excused from — they test our own extensions:
- `patternbench_*` gauges in /metrics (vLLM exports its own `vllm:*` names; the disconnect check
  here reads those instead);
- 503 + Retry-After backpressure (vLLM queues every request; it has no admission limit);
- drain semantics on SIGTERM (finishing in-flight streams, refusing new connections, exit 0);
- the API key 401 (vLLM has `--api-key`, but this module starts it once, without one);
- the 1 MiB body limit and 413 for a prompt over the context (vLLM answers 400 for both);
- OpenAI-shaped 404/405 and non-UTF-8 errors (vLLM answers FastAPI's `{"detail": ...}`);
- the SSE `Cache-Control`/`X-Accel-Buffering` headers, and a closing chunk of its own
  (vLLM puts `finish_reason` on the last token's chunk; both are valid OpenAI streams).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.launcher import TargetProcess, start_target
from targets.vllm import READY_TIMEOUT_S, install_error
from tests.contract.client import Stream, request, wait_for
from tests.contract.test_http import BAD_BODIES

MODEL = "tiny"
NOT_OPENAI_SHAPED = {"not utf-8"}  # vLLM's FastAPI answers these with {"detail": ...}

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetProcess]:
    problem = install_error()
    if problem is not None:
        pytest.skip(problem)
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with start_target("vllm", "vllm", model=MODEL, device="cpu", options={}, log_path=log,
                      ready_timeout_s=max(READY_TIMEOUT_S, 600)) as server:
        yield server


@pytest.fixture(scope="module")
def engine() -> Any:
    from targets.model import load_engine

    return load_engine(MODEL, "cpu")


def post(url: str, body: dict[str, Any] | bytes, path: str = "/v1/completions") -> Any:
    if isinstance(body, dict):
        body = {"model": MODEL, **body}
    return request(url, "POST", path, body, timeout=120)


def chunks_of(payloads: list[str]) -> list[dict[str, Any]]:
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
    return [json.loads(p) for p in payloads[:-1]]


def test_serves_the_same_model_folder(vllm: TargetProcess) -> None:
    from targets.model import materialize

    assert request(vllm.url, "GET", "/health").status == 200
    models = request(vllm.url, "GET", "/v1/models").json()["data"]
    assert [m["id"] for m in models] == [MODEL]  # the name the driver sends
    assert Path(models[0]["root"]) == materialize(MODEL)


def test_completion_body_and_usage(vllm: TargetProcess) -> None:
    reply = post(vllm.url, {"prompt": "Hello world", "max_tokens": 7, "ignore_eos": True})
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["object"] == "text_completion" and body["model"] == MODEL
    assert body["choices"][0]["finish_reason"] == "length"
    assert isinstance(body["choices"][0]["text"], str) and body["choices"][0]["text"]
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (2, 7, 9)
    ids = post(vllm.url, {"prompt": [15496, 995], "max_tokens": 3, "ignore_eos": True}).json()
    assert ids["usage"]["prompt_tokens"] == 2 and ids["usage"]["completion_tokens"] == 3


def test_greedy_output_equals_our_engine(vllm: TargetProcess, engine: Any) -> None:
    from targets.api import ChatMessage, chat_prompt
    from targets.model import GenParams

    def ours(text: str, n: int) -> str:
        ids = engine.tokenizer.encode(text, add_special_tokens=False)
        out = list(engine.generate(ids, GenParams(max_tokens=n, ignore_eos=True)))
        return str(engine.tokenizer.decode(out, skip_special_tokens=True))

    greedy = {"temperature": 0, "ignore_eos": True, "max_tokens": 12}
    for prompt in ("Hello world, this is", "The capital of France"):
        text = post(vllm.url, {"prompt": prompt, **greedy}).json()["choices"][0]["text"]
        assert text == ours(prompt, 12), prompt
    messages = [{"role": "user", "content": "Say hi"}]
    chat = post(vllm.url, {"messages": messages, **greedy}, path="/v1/chat/completions")
    assert chat.status == 200, chat.body
    expected = ours(chat_prompt([ChatMessage(**m) for m in messages]), 12)
    assert chat.json()["choices"][0]["message"]["content"] == expected


def test_prompt_token_count_matches_our_tokenizer(vllm: TargetProcess, engine: Any) -> None:
    from harness.scenario import Workload
    from harness.workload import PromptFactory

    prompts = PromptFactory(engine.tokenizer, Workload(prompt_tokens=128, output_tokens=4), 7)
    for i in range(3):
        reply = post(vllm.url, {"prompt": prompts.get(i).prompt, "max_tokens": 4})
        assert reply.json()["usage"]["prompt_tokens"] == 128


def test_stream_chunks_usage_and_done(vllm: TargetProcess) -> None:
    body = {"model": MODEL, "prompt": "Hello world", "max_tokens": 6, "temperature": 0,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    stream = Stream(vllm.url, body)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    chunks = chunks_of(stream.rest())
    stream.close()
    with_choice = [c for c in chunks if c["choices"]]
    finishes = [c["choices"][0]["finish_reason"] for c in with_choice]
    assert finishes.count("length") == 1 and finishes[-1] == "length"
    assert len([c for c in with_choice if c["choices"][0]["text"]]) == 6  # a chunk per token
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (2, 6)
    whole = post(vllm.url, {**body, "stream": False, "stream_options": None}).json()
    assert "".join(c["choices"][0]["text"] for c in with_choice) == whole["choices"][0]["text"]

    chat = Stream(vllm.url, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
                             "max_tokens": 4, "ignore_eos": True}, path="/v1/chat/completions")
    chat_chunks = [c for c in chunks_of(chat.rest()) if c["choices"]]
    chat.close()
    assert all(c["object"] == "chat.completion.chunk" for c in chat_chunks)
    assert len([c for c in chat_chunks if c["choices"][0]["delta"].get("content")]) == 4


def test_bad_input_is_400_never_500(vllm: TargetProcess) -> None:
    for what, body in BAD_BODIES:
        reply = post(vllm.url, body)
        assert reply.status == 400, f"{what}: {reply.status} {reply.body!r}"
        if what not in NOT_OPENAI_SHAPED:
            assert isinstance(reply.json()["error"]["message"], str), what
    over_len = post(vllm.url, {"prompt": "x", "max_tokens": 5000})
    assert over_len.status == 400 and "max_tokens" in over_len.json()["error"]["message"]
    over_context = post(vllm.url, {"prompt": [15496] * 1100, "max_tokens": 1})
    assert over_context.status == 400 and "context" in over_context.json()["error"]["message"]


def vllm_metric(url: str, name: str) -> float:
    text = request(url, "GET", "/metrics").body.decode()
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_health_during_stream_and_disconnect_cancels(vllm: TargetProcess) -> None:
    long = 1000  # tokens: ~10 s of vLLM time at one stream, longer than the waits below
    url = vllm.url
    before = vllm_metric(url, "vllm:generation_tokens_total")
    stream = Stream(url, {"model": MODEL, "prompt": "hi", "max_tokens": long,
                          "ignore_eos": True})
    events = stream.events()
    for _ in range(3):
        next(events)
    assert request(url, "GET", "/health").status == 200  # answers mid-generation
    assert vllm_metric(url, "vllm:num_requests_running") == 1
    stream.close()
    wait_for(lambda: vllm_metric(url, "vllm:num_requests_running") == 0, 60,
             "vLLM to abort the disconnected request")
    generated = vllm_metric(url, "vllm:generation_tokens_total") - before
    assert generated < long / 2
