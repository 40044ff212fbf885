"""The suite's one polling helper: it returns once the predicate holds, and a timeout names what
was waited for."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for


def test_returns_once_the_predicate_holds() -> None:
    calls: list[int] = []

    def third_call() -> bool:
        calls.append(1)
        return len(calls) == 3

    wait_for(third_call, timeout_s=5, interval_s=0, what="the third call")
    assert len(calls) == 3


def test_a_timeout_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the queue"):
        wait_for(lambda: False, timeout_s=0.05, interval_s=0.01, what="the queue to drain")
