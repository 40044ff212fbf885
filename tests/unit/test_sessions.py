"""Multi-turn session turns (`harness.workload.sessions`): what each turn sends, and when a
conversation ends (turn count, context)."""

from __future__ import annotations

from harness.scenario.types import Workload
from harness.workload.prompts import RequestSpec
from harness.workload.sessions import Conversation, Reply

FIRST = RequestSpec(index=0, prompt=" river stone", prompt_tokens=2, max_tokens=3)
SECOND = RequestSpec(index=1, prompt=" cloud", prompt_tokens=1, max_tokens=4)
THIRD = RequestSpec(index=2, prompt=" field house", prompt_tokens=2, max_tokens=2)


def test_completions_turns_resend_the_conversation_as_one_prompt() -> None:
    conv, wl = Conversation(turns=3, context=2048), Workload()
    assert conv.body(FIRST, wl, "tiny")["prompt"] == " river stone"
    conv.record(FIRST, Reply(text=" a b c", prompt_tokens=2, output_tokens=3))
    body = conv.body(SECOND, wl, "tiny")
    assert body["prompt"] == " river stone a b c cloud"
    assert body["max_tokens"] == 4
    assert (conv.turn, conv.tokens, conv.sent_tokens(SECOND)) == (1, 5, 6)


def test_chat_turns_alternate_user_and_assistant_messages() -> None:
    conv, wl = Conversation(turns=3, context=2048), Workload(api="chat")
    conv.record(FIRST, Reply(text=" a b c", prompt_tokens=9, output_tokens=3))
    conv.record(SECOND, Reply(text=" d", prompt_tokens=20, output_tokens=1))
    assert conv.body(THIRD, wl, "tiny")["messages"] == [
        {"role": "user", "content": " river stone"},
        {"role": "assistant", "content": " a b c"},
        {"role": "user", "content": " cloud"},
        {"role": "assistant", "content": " d"},
        {"role": "user", "content": " field house"},
    ]
    assert conv.tokens == 21  # the server's count of the last turn + its answer


def test_without_usage_the_length_is_counted_from_the_parts() -> None:
    conv = Conversation(turns=3, context=2048)
    conv.record(FIRST, Reply(text=" a b c", output_tokens=3))
    conv.record(SECOND, Reply(text=" d e", output_tokens=2))
    assert conv.tokens == 2 + 3 + 1 + 2


def test_a_conversation_ends_after_its_turns() -> None:
    conv = Conversation(turns=2, context=2048)
    assert conv.takes(FIRST)
    conv.record(FIRST, Reply(text=" a", output_tokens=1))
    assert conv.takes(SECOND)
    conv.record(SECOND, Reply(text=" b", output_tokens=1))
    assert not conv.takes(THIRD)
    conv.next_session()
    assert (conv.session, conv.turn, conv.tokens, conv.takes(THIRD)) == (1, 0, 0, True)
    assert conv.body(THIRD, Workload(), "tiny")["prompt"] == " field house"


def test_a_turn_that_would_not_fit_the_context_ends_the_conversation() -> None:
    conv = Conversation(turns=10, context=10)
    conv.record(FIRST, Reply(text=" a b c", output_tokens=3))  # 5 tokens so far
    assert conv.takes(SECOND)  # 5 + 1 + 4 = 10
    assert not conv.takes(THIRD.__class__(index=2, prompt=" x y", prompt_tokens=2,
                                          max_tokens=4))  # 5 + 2 + 4 = 11
