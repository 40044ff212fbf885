"""Length distributions: seeded draws, their mean and spread, clipping, the empirical table
reader, and the [workload] fields that choose them (one-line ScenarioError naming the field)."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.workload.lengths import (
    CHAT,
    CHAT_OUTPUT_MEAN,
    CHAT_PROMPT_MEAN,
    Lengths,
    clip,
    read_table,
)

DRAWS = 10_000  # the mean's standard error is stdev / 100: well inside the tolerances below


def draws(lengths: Lengths, seed: int = 7, count: int = DRAWS) -> list[int]:
    rng = random.Random(seed)
    return [lengths.draw(rng) for _ in range(count)]


def workload(**fields: Any) -> Any:
    return parse_scenario({"workload": fields, "targets": ["flask_threads"]}).workload


def test_fixed_is_always_its_value() -> None:
    assert set(draws(Lengths("fixed", 64))) == {64}


def test_uniform_covers_both_ends_and_nothing_else() -> None:
    got = draws(Lengths("uniform", low=16, high=112))
    assert (min(got), max(got)) == (16, 112)
    assert statistics.fmean(got) == pytest.approx(64, rel=0.02)
    assert statistics.pstdev(got) == pytest.approx(((112 - 16 + 1) ** 2 - 1) ** 0.5 / 12 ** 0.5,
                                                   rel=0.03)


@pytest.mark.parametrize("dist", ["normal", "lognormal"])
def test_mean_and_spread_are_those_asked(dist: str) -> None:
    got = draws(Lengths(dist, 200, 50))
    assert statistics.fmean(got) == pytest.approx(200, rel=0.02)
    assert statistics.pstdev(got) == pytest.approx(50, rel=0.05)


def test_lognormal_is_skewed_right_normal_is_not() -> None:
    logn = draws(Lengths("lognormal", 64, 48))
    norm = draws(Lengths("normal", 64, 16))
    assert statistics.median(logn) < statistics.fmean(logn) - 5  # a long right tail
    assert abs(statistics.median(norm) - statistics.fmean(norm)) < 1
    assert min(logn) >= 1


def test_the_same_seed_draws_the_same_lengths_another_does_not() -> None:
    lengths = Lengths("lognormal", 64, 48)
    assert draws(lengths, 3, 50) == draws(lengths, 3, 50)
    assert draws(lengths, 3, 50) != draws(lengths, 4, 50)


def test_a_wide_normal_never_draws_below_one_token() -> None:
    assert min(draws(Lengths("normal", 4, 40))) == 1


def test_clip_fits_prompt_and_output_to_the_context() -> None:
    assert clip(100, 64, 2048) == (100, 64)
    assert clip(2000, 64, 2048) == (2000, 48)  # the output gets what is left
    assert clip(5000, 64, 2048) == (2047, 1)  # a prompt leaves room for one output token
    assert clip(1, 9999, 16) == (1, 15)


def test_chat_profile_has_the_published_means() -> None:
    wl = workload(lengths="chat")
    assert (wl.prompt_lengths, wl.output_lengths) == CHAT
    assert (wl.prompt_tokens, wl.output_tokens) == (round(CHAT_PROMPT_MEAN),
                                                    round(CHAT_OUTPUT_MEAN))
    prompts, outputs = draws(CHAT[0]), draws(CHAT[1])
    assert statistics.fmean(prompts) == pytest.approx(CHAT_PROMPT_MEAN, rel=0.05)
    assert statistics.fmean(outputs) == pytest.approx(CHAT_OUTPUT_MEAN, rel=0.05)


def test_tables_in_workload_become_distributions_with_their_mean_as_nominal() -> None:
    wl = workload(prompt_tokens={"dist": "uniform", "min": 10, "max": 30},
                  output_tokens={"dist": "lognormal", "mean": 64, "stdev": 48})
    assert wl.prompt_lengths == Lengths("uniform", low=10, high=30)
    assert wl.output_lengths == Lengths("lognormal", 64.0, 48.0)
    assert (wl.prompt_tokens, wl.output_tokens) == (20, 64)


@pytest.mark.parametrize(("fields", "message"), [
    ({"output_tokens": {"dist": "gamma", "mean": 3}}, "workload.output_tokens.dist: must be one "
     "of 'fixed', 'uniform', 'normal', 'lognormal', got 'gamma'"),
    ({"output_tokens": {"dist": "normal", "mean": 64}},
     "workload.output_tokens.stdev: must be given"),
    ({"output_tokens": {"dist": "normal", "mean": 0, "stdev": 1}},
     "workload.output_tokens.mean: must be ≥ 1, got 0"),
    ({"prompt_tokens": {"dist": "lognormal", "mean": 9, "stdev": -1}},
     "workload.prompt_tokens.stdev: must be ≥ 0, got -1"),
    ({"prompt_tokens": {"dist": "uniform", "min": 9, "max": 3}},
     "workload.prompt_tokens.max: must be ≥ workload.prompt_tokens.min (9), got 3"),
    ({"prompt_tokens": {"dist": "uniform", "min": 1.5, "max": 3}},
     "workload.prompt_tokens.min: must be an integer, got 1.5"),
    ({"prompt_tokens": {"dist": "uniform", "min": 9, "max": 30, "mean": 3}},
     "workload.prompt_tokens: unknown key 'mean' for dist 'uniform'; expected one of dist, max, "
     "min"),
    ({"output_tokens": {"mean": 64, "stdev": 3}}, "workload.output_tokens: unknown key 'stdev' "
     "for dist 'fixed'; expected one of dist, mean"),
    ({"lengths": "sharegpt"}, "workload.lengths: must be one of '', 'chat', got 'sharegpt'"),
    ({"lengths": {"file": "x.csv"}},
     "workload.lengths: unknown key 'file'; expected one of table"),
    ({"lengths": {"table": 3}}, "workload.lengths.table: must be a string, got 3"),
    ({"lengths": "chat", "output_tokens": {"dist": "fixed", "mean": 3}},
     "workload.lengths: sets both lengths: drop the prompt_tokens / output_tokens tables beside "
     "it"),
    ({"prefixes": 2}, "workload.prefix_tokens: must be ≥ 1 with workload.prefixes, got 0"),
    ({"prefixes": 2, "prefix_tokens": 8, "prompt_reuse": True},
     "workload.prefixes: needs distinct prompts (prompt_reuse = false)"),
    ({"turns": 0}, "workload.turns: must be ≥ 1, got 0"),
    ({"turns": 2, "prefixes": 2, "prefix_tokens": 8}, "workload.turns: must be 1 with "
     "workload.prefixes (every turn's message would start with a prefix), got 2"),
    ({"think_time_s": -1}, "workload.think_time_s: must be ≥ 0, got -1"),
])
def test_bad_length_fields_are_one_line_naming_the_path(fields: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        workload(**fields)
    assert str(err.value) == message


def test_csv_table_is_read_in_order(tmp_path: Path) -> None:
    path = tmp_path / "lengths.csv"
    path.write_text("prompt_tokens,output_tokens,source\n120,30,a\n7,512,b\n", encoding="utf-8")
    assert read_table(path) == ((120, 30), (7, 512))


def test_jsonl_table_is_read_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "lengths.jsonl"
    path.write_text('{"prompt_tokens": 120, "output_tokens": 30}\n\n'
                    '{"prompt_tokens": 7, "output_tokens": 512, "id": "x"}\n', encoding="utf-8")
    assert read_table(path) == ((120, 30), (7, 512))


@pytest.mark.parametrize(("name", "text", "words"), [
    ("t.csv", "prompt_tokens,output_tokens\n120,30\n7,many\n", ["t.csv:3", "whole numbers"]),
    ("t.csv", "prompt,output\n120,30\n", ["t.csv:1", "header"]),
    ("t.csv", "prompt_tokens,output_tokens\n120,0\n", ["t.csv:2", "≥ 1"]),
    ("t.csv", "prompt_tokens,output_tokens\n", ["no rows"]),
    ("t.jsonl", '{"prompt_tokens": 1, "output_tokens": 2}\n{"prompt_tokens": 1,\n',
     ["t.jsonl:2", "invalid JSON"]),
    ("t.jsonl", '{"prompt_tokens": 1}\n', ["t.jsonl:1", "whole numbers"]),
    ("t.jsonl", '[1, 2]\n', ["t.jsonl:1", "expected prompt_tokens"]),
])
def test_bad_table_rows_name_the_line(tmp_path: Path, name: str, text: str,
                                      words: list[str]) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        read_table(path)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_table_path_resolves_against_the_scenario_folder(tmp_path: Path) -> None:
    (tmp_path / "lengths.csv").write_text("prompt_tokens,output_tokens\n10,20\n30,40\n",
                                          encoding="utf-8")
    sc = parse_scenario({"workload": {"lengths": {"table": "lengths.csv"}},
                         "targets": ["flask_threads"]}, base_dir=tmp_path)
    assert sc.workload.length_table == ((10, 20), (30, 40))
    assert (sc.workload.prompt_tokens, sc.workload.output_tokens) == (20, 30)
    assert sc.workload.lengths == str(tmp_path / "lengths.csv")
    with pytest.raises(ScenarioError, match="not found"):
        parse_scenario({"workload": {"lengths": {"table": "gone.csv"}},
                        "targets": ["flask_threads"]}, base_dir=tmp_path)


@pytest.mark.parametrize("driver", ["k6", "locust"])
def test_sessions_are_rejected_for_other_drivers(driver: str) -> None:
    data = {"workload": {"turns": 3}, "targets": ["flask_threads"]}
    with pytest.raises(ScenarioError, match=rf"^workload\.turns: is run by the builtin driver "
                                            f"only, not '{driver}'$"):
        parse_scenario(data | {"driver": driver})
    with pytest.raises(ScenarioError, match=r"workload\.turns"):
        parse_scenario(data).with_overrides(driver=driver)
    assert parse_scenario(data).with_overrides(driver="builtin").driver == "builtin"


def test_sessions_need_a_closed_loop() -> None:
    with pytest.raises(ScenarioError, match=r"^workload\.turns: needs load\.kind = 'closed'"):
        parse_scenario({"workload": {"turns": 3}, "load": {"kind": "poisson", "rate_rps": 2},
                        "targets": ["flask_threads"]})
