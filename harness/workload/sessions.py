"""Multi-turn sessions (`workload.turns` > 1): a closed-loop user holds a conversation.

Each closed-loop stream is one user. Turn t of a conversation sends the conversation so far —
every earlier user message followed by the model's answer to it, **as text** (the answer's
streamed text pieces joined, or the non-streamed text) — then a new user message: the pool's
next distinct prompt, with its drawn prompt and output lengths (`max_tokens`). With the
completions API the turns are concatenated into one prompt; with the chat API they are
alternating `user` / `assistant` messages. The user waits `think_time_s` after each answer.

A conversation ends after `turns` turns, after a failed turn, or before a turn that would not
fit the model's context (conversation so far + the new message + its output), and the user
starts a new one: context grows turn by turn, bounded by the context.

Token counts: a turn's `prompt_tokens` is the server's own count (`usage.prompt_tokens`, asked
for with `stream_options.include_usage`) when it reports one; otherwise the sum of the parts
(the conversation's count so far + the new message). The model's answer is resent as text, so
the server re-tokenizes it: its count may differ by a few tokens from the tokens it generated.

    conv = Conversation(turns=3, context=2048)
    body = conv.body(spec, workload, "tiny")   # conversation so far + spec's message
    conv.record(spec, Reply(text=" the answer", prompt_tokens=140, output_tokens=64))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.scenario.types import Workload
from harness.workload.prompts import RequestSpec, request_body


@dataclass
class Reply:
    """What a driver read of one answer: its text and the server's token counts."""

    text: str = ""
    prompt_tokens: int | None = None  # usage.prompt_tokens, when the server reported it
    output_tokens: int = 0


@dataclass
class Conversation:
    """One user's conversation: (user message, answer text) per finished turn, and its length
    in tokens (`tokens`: the last turn's prompt + answer)."""

    turns: int
    context: int
    session: int = 0
    history: list[tuple[str, str]] = field(default_factory=list)
    tokens: int = 0

    def takes(self, spec: RequestSpec) -> bool:
        """Whether `spec` may be this conversation's next turn (turns left, context room)."""
        if not self.history:
            return True
        need = self.tokens + spec.prompt_tokens + spec.max_tokens
        return len(self.history) < self.turns and need <= self.context

    def next_session(self) -> None:
        """End this conversation: the user starts a new one (`session` counts them)."""
        self.session += 1
        self.history.clear()
        self.tokens = 0

    @property
    def turn(self) -> int:
        """The number of the turn about to be sent (0 = the first)."""
        return len(self.history)

    def sent_tokens(self, spec: RequestSpec) -> int:
        """The prompt length of a turn with `spec`'s message, counted from its parts."""
        return self.tokens + spec.prompt_tokens

    def body(self, spec: RequestSpec, workload: Workload, model: str) -> dict[str, Any]:
        """The request body of the next turn: the conversation so far + `spec`'s message."""
        body = request_body(spec, workload, model)
        if workload.api == "chat":
            messages: list[dict[str, str]] = []
            for user, answer in self.history:
                messages += [{"role": "user", "content": user},
                             {"role": "assistant", "content": answer}]
            body["messages"] = [*messages, {"role": "user", "content": spec.prompt}]
        else:
            body["prompt"] = "".join(u + a for u, a in self.history) + spec.prompt
        return body

    def record(self, spec: RequestSpec, reply: Reply) -> None:
        """Add the finished turn: `spec`'s message and the answer `reply` read."""
        sent = reply.prompt_tokens if reply.prompt_tokens is not None else self.sent_tokens(spec)
        self.history.append((spec.prompt, reply.text))
        self.tokens = sent + reply.output_tokens
