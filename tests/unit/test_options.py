"""Target options: each pattern's frozen dataclass, parsed and checked by `parse_options`, and the
shared serving options split off by `python -m targets`."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from targets.__main__ import build_parser, config_from_args
from targets.fastapi_batching import BatchingOptions
from targets.fastapi_dynamic_batching import DynamicBatchingOptions
from targets.fastapi_proxy import ProxyOptions
from targets.fastapi_threadpool import ThreadpoolOptions
from targets.flask_threads import ThreadsOptions
from targets.server.config import ServeConfig, SharedOptions, parse_options, split_options
from targets.vllm import VllmOptions


def test_defaults_and_given_values() -> None:
    assert parse_options(ThreadsOptions, {}) == ThreadsOptions(threads=8, workers=1)
    assert parse_options(ThreadsOptions, {"threads": 16}) == ThreadsOptions(threads=16, workers=1)
    assert parse_options(ThreadpoolOptions, {}).workers is None  # the pattern picks: = replicas
    assert parse_options(ThreadpoolOptions, {"workers": None}).workers is None
    window = parse_options(DynamicBatchingOptions, {"window_ms": 5}).window_ms
    assert window == 5.0 and isinstance(window, float)  # an int where a number goes
    assert parse_options(BatchingOptions, {"linear": "torch"}).linear == "torch"
    extra = parse_options(VllmOptions, {"extra_args": ["--seed", "1"]}).extra_args
    assert extra == ("--seed", "1")


@pytest.mark.parametrize("schema, options, message", [
    (ThreadsOptions, {"threads": "x"}, "target option threads must be a positive integer, got 'x'"),
    (ThreadsOptions, {"threads": True}, "threads must be a positive integer, got True"),
    (ThreadsOptions, {"threads": 2.5}, "target option threads must be a positive integer, got 2.5"),
    (ThreadsOptions, {"workers": 0}, "target option workers must be a positive integer, got 0"),
    (DynamicBatchingOptions, {"window_ms": -1}, "window_ms must be a number >= 0, got -1"),
    (DynamicBatchingOptions, {"window_ms": "20"}, "window_ms must be a number >= 0, got '20'"),
    (SharedOptions, {"max_queue": -1}, "max_queue must be an integer >= 0, got -1"),
    (BatchingOptions, {"linear": "mkl"}, "linear must be one of onednn, torch, got 'mkl'"),
    (VllmOptions, {"extra_args": "--seed 1"}, "extra_args must be a list of strings"),
    (VllmOptions, {"served_model_name": 7}, "served_model_name must be a string, got 7"),
    (ProxyOptions, {}, "target option upstream_url must be given"),
    (ProxyOptions, {"upstream_url": "ftp://x"}, "upstream_url must be an http(s) URL"),
])
def test_bad_value_is_one_line_naming_the_option(schema: type[Any], options: dict[str, Any],
                                                 message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_options(schema, options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_option_lists_the_valid_ones_shared_included() -> None:
    cfg = ServeConfig("flask_threads", options={"thread": 4, "wokers": 2})
    with pytest.raises(ValueError) as info:
        cfg.pattern_options(ThreadsOptions)
    assert str(info.value) == (
        "unknown target options thread, wokers; valid options: drain_timeout_s, "
        "max_concurrency, max_queue, max_tokens_cap, threads, workers")


def test_shared_options_are_split_off_and_parsed_once() -> None:
    shared, own = split_options({"max_queue": 0, "threads": 3, "max_tokens_cap": 100})
    assert shared == SharedOptions(max_queue=0, max_tokens_cap=100)
    assert own == {"threads": 3}
    assert shared.concurrency(8) == 8 and SharedOptions(max_concurrency=2).concurrency(8) == 2
    assert ServeConfig("x", shared=shared).limits.max_tokens_cap == 100


def test_flags_and_options_precedence() -> None:
    args = build_parser().parse_args([
        "flask_threads", "--max-queue", "3", "--max-tokens-cap", "100", "--drain-timeout", "5",
        "--options-json", '{"max_queue": 9, "threads": 2}', "-o", "max_tokens_cap=50",
        "-o", "workers=2"])
    cfg = config_from_args(args)
    assert cfg.shared == SharedOptions(max_queue=3, max_tokens_cap=50, drain_timeout_s=5.0)
    assert dict(cfg.options) == {"threads": 2, "workers": 2}
    assert cfg.pattern_options(ThreadsOptions) == ThreadsOptions(threads=2, workers=2)


@pytest.mark.slow  # spawns `python -m targets`
@pytest.mark.parametrize("flags, message", [
    (["-o", "thread=4"], "fastapi_blocking: unknown target option thread; valid options: "
                         "drain_timeout_s, max_concurrency, max_queue, max_tokens_cap"),
    (["--max-queue", "-1"], "fastapi_blocking: target option max_queue must be an integer >= 0, "
                            "got -1"),
])
def test_bad_option_exits_with_one_line(flags: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "targets", "fastapi_blocking", "--model",
                           "sim:ttft_ms=0,tpot_ms=0", *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [message]
