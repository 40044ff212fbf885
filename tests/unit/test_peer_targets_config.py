"""How the peer targets are configured without starting them: vLLM's argv and environment, the
missing-venv message, and the gateway's pool totals as scraped from its /metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.summary.record import ProxyPool
from harness.telemetry.pool import parse_pool_totals, pool_point
from targets.proxy_pool import PoolMetrics
from targets.server.config import ServeConfig, parse_options
from targets.server.stats import Stats
from targets.vllm import VllmOptions, command, environment, install_error


def test_vllm_command_serves_the_folder_under_the_spec_name(tmp_path: Path) -> None:
    cfg = ServeConfig(name="vllm", port=8123, model="tiny", api_key="k",
                      options={"max_model_len": 512, "max_num_seqs": 64,
                               "extra_args": ["--seed", "1"]})
    argv = command(cfg, tmp_path)
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert flag("--model") == str(tmp_path)
    assert flag("--served-model-name") == "tiny"
    assert (flag("--dtype"), flag("--max-model-len"), flag("--port")) == ("float32", "512", "8123")
    assert (flag("--max-num-seqs"), flag("--api-key")) == ("64", "k")
    assert argv[-2:] == ["--seed", "1"]


def test_vllm_environment_is_offline_with_a_small_kv_cache() -> None:
    env = environment(parse_options(VllmOptions, {"kv_cache_gb": 2}))
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert environment(VllmOptions())["VLLM_CPU_KVCACHE_SPACE"] == "1"
    with pytest.raises(ValueError, match="kv_cache_gb must be a positive number"):
        parse_options(VllmOptions, {"kv_cache_gb": "lots"})


def test_missing_vllm_venv_says_make_vllm(tmp_path: Path) -> None:
    message = install_error({"venv": str(tmp_path / "absent")})
    assert message is not None and "make vllm" in message and "\n" not in message


@pytest.mark.slow  # spawns `python -m targets`
def test_vllm_target_without_its_venv_exits_with_that_one_line(tmp_path: Path) -> None:
    message = install_error({"venv": str(tmp_path / "absent")})
    proc = subprocess.run(
        [sys.executable, "-m", "targets", "vllm", "--options-json",
         f'{{"venv": "{tmp_path / "absent"}"}}'], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [message]  # one line, no traceback


def test_pool_totals_from_the_proxy_metrics() -> None:
    stats = Stats("fastapi_proxy")
    pool = PoolMetrics(stats, pool_size=4)
    text0 = stats.render().decode()
    for wait, upstream in ((0.0, 0.5), (1.5, 0.5)):
        pool.wait.observe(wait)
        pool.upstream.observe(upstream)
    before, after = parse_pool_totals(text0), parse_pool_totals(stats.render().decode())
    assert before is not None and after is not None
    assert (after.count, after.pool_size) == (2, 4)
    point = pool_point(before, after)
    assert point == ProxyPool(requests=2, pool_size=4, pool_wait_ms_mean=750.0,
                              upstream_ms_mean=500.0, pool_wait_share=0.6)
    assert pool_point(after, after).pool_wait_ms_mean is None


def test_no_pool_totals_in_other_targets_metrics() -> None:
    assert parse_pool_totals(Stats("flask_threads").render().decode()) is None
