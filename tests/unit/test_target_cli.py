"""`python -m targets` (and `patternbench serve`, which passes its flags on): binding beyond
loopback needs `--allow-remote`; the `vllm` target's `shutdown_timeout` reaches vLLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from targets.__main__ import build_parser, check_bind, config_from_args
from targets.server.config import ServeConfig
from targets.vllm import command


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_binds_need_nothing(host: str) -> None:
    check_bind(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_a_remote_bind_needs_allow_remote(host: str) -> None:
    args = build_parser().parse_args(["fastapi_threadpool", "--host", host])
    with pytest.raises(ValueError, match="--allow-remote"):
        config_from_args(args)
    allowed = build_parser().parse_args(["fastapi_threadpool", "--host", host, "--allow-remote"])
    assert config_from_args(allowed).host == host


def vllm_argv(options: dict[str, object]) -> list[str]:
    cfg = ServeConfig("vllm", model="tiny", options=options)
    return command(cfg, Path("/models/tiny"))


def test_vllm_shutdown_timeout_is_vllms_own_unless_given() -> None:
    assert "--shutdown-timeout" not in vllm_argv({})
    argv = vllm_argv({"shutdown_timeout": 30})
    assert argv[argv.index("--shutdown-timeout") + 1] == "30"
    with pytest.raises(ValueError, match="shutdown_timeout"):
        vllm_argv({"shutdown_timeout": -1})
