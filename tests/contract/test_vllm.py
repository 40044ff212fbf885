"""What only the real vLLM server (`make vllm`) is checked for, beside the contract suite.

vLLM is a contract target like the others (`SKIPS["vllm"]` in conftest lists the checks it
answers its own way); this module checks, on the fleet's vLLM, what is particular to it: that it
serves the *same model* — the folder every target loads, the same prompt token counts, our chat
transcript through its template — and that it answers our limits and a departed client in its
own way, read from its own `vllm:*` metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.run.launcher import TargetProcess
from harness.telemetry.scrape import parse_metrics
from tests.contract.client import Stream, request
from tests.contract.conftest import API_KEY, MODEL, Fleet, target_params
from tests.waiting import wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}  # the fleet starts vLLM with --api-key

pytestmark = pytest.mark.parametrize("target", target_params("vllm"))


@pytest.fixture()
def vllm(fleet: Fleet, target: str) -> TargetProcess:
    return fleet.get(target)


@pytest.fixture(scope="module")
def engine() -> Any:
    from targets.model.load import load_engine

    return load_engine(MODEL, "cpu")


def post(url: str, body: dict[str, Any] | bytes, path: str = "/v1/completions") -> Any:
    if isinstance(body, dict):
        body = {"model": MODEL, **body}
    return request(url, "POST", path, body, AUTH, timeout=120)


def test_serves_the_same_model_folder(vllm: TargetProcess) -> None:
    from targets.model.store import materialize

    assert request(vllm.url, "GET", "/health").status == 200
    models = request(vllm.url, "GET", "/v1/models", headers=AUTH).json()["data"]
    assert [m["id"] for m in models] == [MODEL]  # the name the driver sends
    assert Path(models[0]["root"]) == materialize(MODEL)


def test_chat_template_renders_our_transcript(vllm: TargetProcess, engine: Any) -> None:
    """vLLM's chat goes through `CHAT_TEMPLATE`: greedy chat output equals our engine's on our
    transcript (the contract's greedy check compares completions)."""
    from targets.model.engine import GenParams
    from targets.server.api import ChatMessage, chat_prompt

    def ours(text: str, n: int) -> str:
        ids = engine.tokenizer.encode(text, add_special_tokens=False)
        out = list(engine.generate(ids, GenParams(max_tokens=n, ignore_eos=True)))
        return str(engine.tokenizer.decode(out, skip_special_tokens=True))

    greedy = {"temperature": 0, "ignore_eos": True, "max_tokens": 12}
    messages = [{"role": "user", "content": "Say hi"}]
    chat = post(vllm.url, {"messages": messages, **greedy}, path="/v1/chat/completions")
    assert chat.status == 200, chat.body
    expected = ours(chat_prompt([ChatMessage(**m) for m in messages]), 12)
    assert chat.json()["choices"][0]["message"]["content"] == expected


def test_prompt_token_count_matches_our_tokenizer(vllm: TargetProcess, engine: Any) -> None:
    from harness.scenario.types import Workload
    from harness.workload.prompts import PromptFactory

    prompts = PromptFactory(engine.tokenizer, Workload(prompt_tokens=128, output_tokens=4), 7)
    for i in range(3):
        reply = post(vllm.url, {"prompt": prompts.get(i).prompt, "max_tokens": 4})
        assert reply.json()["usage"]["prompt_tokens"] == 128


def test_limits_are_400s_naming_what_is_over(vllm: TargetProcess) -> None:
    """vLLM answers our limits' 413s with 400s (SKIPS["vllm"]["limits"]); the messages say why."""
    over_len = post(vllm.url, {"prompt": "x", "max_tokens": 5000})
    assert over_len.status == 400 and "max_tokens" in over_len.json()["error"]["message"]
    over_context = post(vllm.url, {"prompt": [15496] * 1100, "max_tokens": 1})
    assert over_context.status == 400 and "context" in over_context.json()["error"]["message"]


def vllm_metric(url: str, name: str) -> float:
    """vLLM's metric `name`, summed over its label sets (0 when not exported)."""
    text = request(url, "GET", "/metrics").body.decode()
    return parse_metrics(text, kept=frozenset({name})).get(name, 0.0)


def settled_generation_tokens(url: str) -> float:
    """vLLM's generated-token counter once every earlier step is in it.

    The API server adds an engine step's tokens to the counter when that step's output reaches it,
    and the last steps before a request ends (or is aborted) can reach it only with a later
    request's output: read bare, the counter can lag by hundreds of tokens. A one-token request
    carries them in, so the count is current after it (less its one token).
    """
    post(url, {"prompt": "hi", "max_tokens": 1, "ignore_eos": True})
    return vllm_metric(url, "vllm:generation_tokens_total") - 1


def test_disconnect_aborts_the_generation(vllm: TargetProcess) -> None:
    """The contract's disconnect check in vLLM's own counters (SKIPS["vllm"]["disconnect"])."""
    long = 1000  # tokens: ~9 s of vLLM time at one stream, longer than the waits below
    url = vllm.url
    wait_for(lambda: vllm_metric(url, "vllm:num_requests_running") == 0, 60, 0.02,
             "vLLM to finish the previous test's requests")
    before = settled_generation_tokens(url)
    stream = Stream(url, {"model": MODEL, "prompt": "hi", "max_tokens": long,
                          "ignore_eos": True}, AUTH)
    events = stream.events()
    for _ in range(3):
        next(events)
    assert vllm_metric(url, "vllm:num_requests_running") == 1
    stream.close()
    wait_for(lambda: vllm_metric(url, "vllm:num_requests_running") == 0, 60, 0.02,
             "vLLM to abort the disconnected request")
    generated = settled_generation_tokens(url) - before
    assert 3 <= generated < long / 2
