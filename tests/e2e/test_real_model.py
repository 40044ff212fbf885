"""Every target serves the real model (`smollm2-135m`) and answers exactly what transformers does.

Eight chat prompts of different lengths, four at a time (what the servers admit), greedy,
ending where the model stops (its `<|im_end|>`) or at `max_tokens`; two plain completions. The
reference is transformers' own `generate` in this process on the same folder, not one of our
engines. vLLM (marked `vllm`) joins
where `.venv-vllm` exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.run.launcher import LaunchError, TargetProcess
from targets import TARGETS
from targets.model.store import materialize
from targets.server.text import Detokenizer
from targets.vllm import install_error
from tests.contract.client import request
from tests.contract.conftest import (
    API_KEY,
    MAX_CONCURRENCY,
    VLLM_READY_S,
    contract_targets,
    start_one,
)

pytestmark = pytest.mark.timeout(600)  # eight servers loading the model on a busy machine
MODEL = "smollm2-135m"
MAX_TOKENS = 32
CHATS = [
    "hi",
    "What is the capital of France? Answer in one sentence.",
    "Write a haiku about the sea.",
    "List three uses of copper.",
    "Explain what a hash table is to a ten year old.",
    "Translate 'good morning' into Spanish and German.",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Why is the sky blue? Give a short scientific explanation that mentions Rayleigh scattering, "
    "the wavelengths of visible light and why sunsets look red.",
]
COMPLETIONS = ["The three primary colours are", "def fibonacci(n):\n    "]
# our patterns and the gateway, then vLLM (the frameworks of #24 check their own identity)
TARGET_NAMES = [*(n for n in contract_targets() if TARGETS[n].kind in ("python", "proxy")), "vllm"]


def params() -> list[Any]:
    return [pytest.param(name, id=name, marks=[pytest.mark.vllm,
                                               pytest.mark.timeout(VLLM_READY_S + 300)])
            if TARGETS[name].kind == "vllm" else name for name in TARGET_NAMES]


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple[str, int, str]]:
    """transformers' greedy answer to each prompt: (text, completion tokens, finish_reason)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = materialize(MODEL)
    tokenizer: Any = AutoTokenizer.from_pretrained(folder)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    eos = int(model.config.eos_token_id)
    prompts = {text: tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                   tokenize=False, add_generation_prompt=True)
               for text in CHATS}
    prompts.update({text: text for text in COMPLETIONS})
    answers = {}
    with torch.inference_mode():
        for key, prompt in prompts.items():
            ids = tokenizer.encode(prompt, add_special_tokens=False)
            out = model.generate(torch.tensor([ids]), max_new_tokens=MAX_TOKENS, do_sample=False,
                                 eos_token_id=eos, pad_token_id=eos)
            tokens = out[0, len(ids):].tolist()
            detok = Detokenizer(tokenizer)
            text = "".join(detok.push(t) for t in tokens) + detok.flush()
            answers[key] = (text, len(tokens), "stop" if tokens[-1] == eos else "length")
    return answers


@pytest.fixture(scope="module")
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, TargetProcess | str]]:
    """Every selected target started on the real model at once; a failed start keeps its
    reason."""
    log_dir: Path = tmp_path_factory.mktemp("real-model-logs")
    chosen = {item.callspec.params.get("target") for item in request.session.items
              if isinstance(item, pytest.Function) and hasattr(item, "callspec")
              and item.path == request.path}
    names = [name for name in TARGET_NAMES if name in chosen]
    materialize(MODEL)  # built once here, not by eight processes racing for the lock

    def start(name: str) -> TargetProcess | str:
        if TARGETS[name].kind == "vllm" and (problem := install_error()):
            return problem
        try:
            return start_one(name, log_dir, model=MODEL)
        except LaunchError as exc:
            return f"{name} did not start: {exc}"

    with ThreadPoolExecutor(len(names) or 1) as pool:
        started = dict(zip(names, pool.map(start, names), strict=True))
    yield started
    for server in started.values():
        if isinstance(server, TargetProcess):
            server.stop(timeout_s=20)


@pytest.mark.parametrize("target", params())
def test_greedy_answers_equal_transformers(target: str, servers: dict[str, TargetProcess | str],
                                           reference: dict[str, tuple[str, int, str]]) -> None:
    server = servers[target]
    if isinstance(server, str):
        if TARGETS[target].kind == "vllm" and "make vllm" in server:
            pytest.skip(server)
        pytest.fail(server)
    auth = {"Authorization": f"Bearer {API_KEY}"}

    def ask(key: str) -> tuple[str, int, str]:
        if key in CHATS:
            body: dict[str, Any] = {"messages": [{"role": "user", "content": key}]}
            path = "/v1/chat/completions"
        else:
            body, path = {"prompt": key}, "/v1/completions"
        reply = request(server.url, "POST", path, {"model": MODEL, "max_tokens": MAX_TOKENS,
                                                   "temperature": 0, **body}, auth, timeout=240)
        assert reply.status == 200, reply.body[:300]
        data = reply.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if key in CHATS else choice["text"]
        return text, data["usage"]["completion_tokens"], choice["finish_reason"]

    keys = [*CHATS, *COMPLETIONS]
    with ThreadPoolExecutor(MAX_CONCURRENCY) as pool:  # as many as the server admits at once
        answers = dict(zip(keys, pool.map(ask, keys), strict=True))
    assert answers == reference
    finishes = {finish for _, _, finish in answers.values()}
    assert finishes == {"stop", "length"}  # natural ends and the cap, both exercised
