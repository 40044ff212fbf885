"""End to end: multi-turn sessions through the builtin driver against a real target process.

Closed-loop users hold 3-turn conversations with the sim model; each turn resends the
conversation so far, so the server's prompt count (`usage.prompt_tokens`, in the samples) grows
turn by turn by at least the previous answer and the new message.
"""

from __future__ import annotations

import io
import itertools
from collections import defaultdict
from pathlib import Path

from harness.run.runner import RunOptions, run_scenario
from harness.samples import Sample, read_samples
from harness.scenario.load import parse_scenario

SIM = "sim:ttft_ms=5,tpot_ms=2,gil=release"


def run_sessions(tmp_path: Path, api: str) -> list[Sample]:
    sc = parse_scenario({
        "name": "e2e-sessions", "model": SIM, "seed": 5, "timeout_s": 30,
        "workload": {"prompt_tokens": {"dist": "uniform", "min": 8, "max": 16},
                     "output_tokens": {"dist": "uniform", "min": 4, "max": 12},
                     "turns": 3, "think_time_s": 0.05, "api": api},
        "load": {"kind": "closed", "concurrency": 2, "duration_s": 1.5, "warmup_s": 0.2},
        "targets": [{"name": "fastapi_batching", "label": "sim"}],
    })
    opts = RunOptions(results_root=tmp_path / "results", reports_root=tmp_path / "reports",
                      out=io.StringIO())
    run_dir = run_scenario(sc, opts)
    return read_samples(run_dir / "samples" / "sim" / "c2.jsonl")


def check_growth(samples: list[Sample], template: int) -> None:
    """`template`: the most tokens a turn's chat roles add (`user:`, `assistant:`, newlines)."""
    by_session: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        assert s.ok, s.error
        assert s.extra.session is not None and s.extra.turn is not None
        by_session[s.extra.session].append(s)
    full = [turns for turns in by_session.values() if len(turns) == 3]
    assert len(full) >= 2, {k: len(v) for k, v in by_session.items()}
    for turns in full:
        turns.sort(key=lambda s: s.extra.turn or 0)  # every turn is set (checked above)
        assert [s.extra.turn for s in turns] == [0, 1, 2]
        assert all(4 <= s.output_tokens <= 12 for s in turns)  # ignore_eos: the drawn length
        assert 8 <= turns[0].prompt_tokens <= 16 + template
        for before, after in itertools.pairwise(turns):
            grown = after.prompt_tokens - before.prompt_tokens
            # the previous answer (re-tokenized from its text: a few tokens either way) plus a
            # new message of 8..16 tokens
            assert before.output_tokens + 8 - 3 <= grown, (before, after)
            assert grown <= before.output_tokens + 16 + 3 + template, (before, after)
            assert after.sent_at >= before.done_at  # type: ignore[operator]  # ok: done_at set


def test_completions_sessions_resend_the_conversation(tmp_path: Path) -> None:
    check_growth(run_sessions(tmp_path, "completions"), template=0)


def test_chat_sessions_resend_the_conversation(tmp_path: Path) -> None:
    check_growth(run_sessions(tmp_path, "chat"), template=8)
