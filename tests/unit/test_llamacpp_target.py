"""The llamacpp target's command line, its missing-build line and the run going on without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from targets.llamacpp import command, install_error, model_file
from targets.server.config import ServeConfig


def test_command_serves_the_gguf_with_slots_context_threads_and_our_chat_template(
        tmp_path: Path) -> None:
    from targets.vllm import CHAT_TEMPLATE

    gguf = tmp_path / "m.gguf"
    cfg = ServeConfig(name="llamacpp", port=8123, model="tiny", api_key="k",
                      options={"parallel": 8, "threads": 1, "extra_args": ["--seed", "1"]})
    argv = command(cfg, gguf)

    def flag(name: str) -> str:
        return argv[argv.index(name) + 1]

    assert argv[0].endswith("/build/bin/llama-server")
    assert (flag("-m"), flag("--port"), flag("--host")) == (str(gguf), "8123", "127.0.0.1")
    assert (flag("--parallel"), flag("--ctx-size"), flag("--threads")) == ("8", "8192", "1")
    assert (flag("--alias"), flag("--api-key"), flag("--chat-template")) == (
        "tiny", "k", CHAT_TEMPLATE)
    assert "--metrics" in argv and argv[-2:] == ["--seed", "1"]
    own = command(ServeConfig(name="llamacpp", port=1, model="tiny",
                              options={"chat_template": "model", "ctx_size": 4096}), gguf)
    assert "--chat-template" not in own and own[own.index("--ctx-size") + 1] == "4096"
    threads = own[own.index("--threads") + 1]
    assert threads == str(len(os.sched_getaffinity(0)))  # the cores it may use


def test_bad_options_and_a_missing_gguf_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parallel"):
        command(ServeConfig(name="llamacpp", port=1, model="tiny",
                            options={"parallel": 0}), tmp_path)
    cfg = ServeConfig(name="llamacpp", port=1, model="tiny",
                      options={"gguf": str(tmp_path / "absent.gguf")})
    with pytest.raises(ValueError, match=r"absent\.gguf is not a file"):
        model_file(cfg)


def test_missing_build_says_make_llamacpp(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTERNBENCH_LLAMACPP_DIR", str(tmp_path))
    message = install_error()
    assert message is not None and "make llamacpp" in message and "\n" not in message


@pytest.mark.slow  # spawns `python -m targets`
def test_target_without_its_build_exits_with_that_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATTERNBENCH_LLAMACPP_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "targets", "llamacpp"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("llamacpp: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "make llamacpp" in proc.stderr
