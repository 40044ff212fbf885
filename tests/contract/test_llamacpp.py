"""What only llama.cpp's `llama-server` (`make llamacpp`) is checked for, beside the contract suite.

llama-server is a contract target like the others (`SKIPS["llamacpp"]` in conftest lists the
checks it answers its own way); this module checks, on the fleet's llama-server, what is
particular to it: that it serves the *same model* — the model folder converted to a float32 GGUF,
the same prompt token counts, our chat transcript through its template — and that a departed
client frees its slot, read from its own `llamacpp:*` metrics.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.run.launcher import TargetProcess
from harness.telemetry.scrape import parse_metrics
from tests.contract.client import Stream, request
from tests.contract.conftest import API_KEY, MODEL, Fleet, target_params
from tests.waiting import wait_for

AUTH = {"Authorization": f"Bearer {API_KEY}"}  # the fleet starts it with --api-key

pytestmark = pytest.mark.parametrize("target", target_params("llamacpp"))


@pytest.fixture()
def server(fleet: Fleet, target: str) -> TargetProcess:
    return fleet.get(target)


@pytest.fixture(scope="module")
def engine() -> Any:
    from targets.model.load import load_engine

    return load_engine(MODEL, "cpu")


def post(url: str, body: dict[str, Any], path: str = "/v1/completions") -> Any:
    return request(url, "POST", path, {"model": MODEL, **body}, AUTH, timeout=120)


def ours(engine: Any, ids: list[int], n: int) -> list[int]:
    from targets.model.engine import GenParams

    return list(engine.generate(ids, GenParams(max_tokens=n, ignore_eos=True)))


def test_serves_the_model_folder_as_a_float32_gguf(server: TargetProcess) -> None:
    from targets.llamacpp import gguf_path
    from targets.model.store import materialize

    assert request(server.url, "GET", "/health").status == 200
    models = request(server.url, "GET", "/v1/models", headers=AUTH).json()["data"]
    assert [m["id"] for m in models] == [MODEL]  # the name the driver sends
    gguf = gguf_path(materialize(MODEL))
    assert gguf.exists() and gguf.stat().st_size > 4 * 12_000_000  # ~12 M float32 weights
    assert str(gguf) in server.log_path.read_text(errors="replace")


def test_prompt_token_count_matches_our_tokenizer(server: TargetProcess, engine: Any) -> None:
    from harness.scenario.types import Workload
    from harness.workload.prompts import PromptFactory

    prompts = PromptFactory(engine.tokenizer, Workload(prompt_tokens=128, output_tokens=4), 7)
    for i in range(3):
        reply = post(server.url, {"prompt": prompts.get(i).prompt, "max_tokens": 4})
        assert reply.json()["usage"]["prompt_tokens"] == 128


def test_greedy_tokens_equal_ours_over_64_tokens(server: TargetProcess, engine: Any) -> None:
    """Token ids in, text out: the 64 greedy tokens of 3 prompts equal our engine's, in float32
    on both sides (llama.cpp's matmuls sum in another order: a near tie could flip a token)."""
    from harness.scenario.types import Workload
    from harness.workload.prompts import PromptFactory

    prompts = PromptFactory(engine.tokenizer, Workload(prompt_tokens=128, output_tokens=64), 11)
    for i in range(3):
        ids = engine.tokenizer.encode(prompts.get(i).prompt, add_special_tokens=False)
        reply = post(server.url, {"prompt": ids, "max_tokens": 64, "temperature": 0,
                                  "ignore_eos": True}).json()
        assert reply["usage"]["completion_tokens"] == 64
        assert reply["choices"][0]["text"] == engine.tokenizer.decode(ours(engine, ids, 64))


def test_chat_template_renders_our_transcript(server: TargetProcess, engine: Any) -> None:
    from targets.server.api import ChatMessage, chat_prompt

    messages = [{"role": "user", "content": "Say hi"}]
    chat = post(server.url, {"messages": messages, "temperature": 0, "max_tokens": 12,
                             "ignore_eos": True}, path="/v1/chat/completions")
    assert chat.status == 200, chat.body
    ids = engine.tokenizer.encode(chat_prompt([ChatMessage(**m) for m in messages]),
                                  add_special_tokens=False)
    assert chat.json()["usage"]["prompt_tokens"] == len(ids)
    expected = engine.tokenizer.decode(ours(engine, ids, 12))
    assert chat.json()["choices"][0]["message"]["content"] == expected


def metric(url: str, name: str) -> float:
    text = request(url, "GET", "/metrics", headers=AUTH).body.decode()
    return parse_metrics(text, kept=frozenset({name})).get(name, 0.0)


def test_disconnect_frees_the_slot(server: TargetProcess) -> None:
    """The contract's disconnect check in llama.cpp's own gauge (SKIPS["llamacpp"])."""
    long = 1000  # tokens: seconds of generation, longer than the waits below
    url = server.url
    wait_for(lambda: metric(url, "llamacpp:requests_processing") == 0, 60, 0.02,
             "llama-server to finish the previous test's requests")
    stream = Stream(url, {"model": MODEL, "prompt": "hi", "max_tokens": long,
                          "ignore_eos": True}, AUTH)
    events = stream.events()
    for _ in range(3):
        next(events)
    assert metric(url, "llamacpp:requests_processing") == 1
    stream.close()
    wait_for(lambda: metric(url, "llamacpp:requests_processing") == 0, 30, 0.02,
             "llama-server to release the disconnected request's slot")
