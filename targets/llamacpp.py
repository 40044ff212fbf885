"""llamacpp — llama.cpp's `llama-server` on the same weights: the CPU and edge reference.

The pattern: continuous batching over a fixed number of *slots* (`--parallel`), in C++. Each slot
holds one request and its share of one KV cache (`--ctx-size` / slots tokens each); every decode
step runs one token of every busy slot, and a request that finds no free slot waits in the
server's queue. It is what Ollama and LM Studio run on. It is not ours: this module only says how
to start it. `make llamacpp` builds the binary from the llama.cpp tree that PyPI's
llama-cpp-python 0.3.36 sdist vendors, into `.llamacpp/` (no binary wheel exists).

`python -m targets llamacpp --port P --model tiny` materializes the model folder every target
loads, converts it once to a float32 GGUF with the same tree's `convert_hf_to_gguf.py` (cached in
the model cache beside the folder, keyed by the folder's content hash, under a file lock), then
*replaces itself* (`os.execve`) with::

    .llamacpp/build/bin/llama-server -m <gguf> --host 127.0.0.1 --port P --parallel 32 \\
        --ctx-size 32768 --threads <cores> --metrics --alias <spec> --chat-template <ours>

so the process the launcher started (its pid, its SIGTERM, its process group) is llama-server
itself, which starts no children. The alias is the model spec as given (`tiny`), which is what the
driver sends as `model`. Chat uses our plain transcript as its template (`targets.vllm`'s
`CHAT_TEMPLATE`), so chat prompts tokenize as on the other targets. `--threads` defaults to the
cores this process may run on (a scenario's `cpu_affinity`), not llama.cpp's default of all cores.

Choose it when: you serve on CPUs or small machines, or want quantized weights (a Q4 GGUF is a
quarter of float32 and reads a quarter of the memory per token); it is the speed any CPU result
must be held against.
Pitfall: the slots are fixed at start: `parallel` requests run at once, each limited to
`ctx_size / parallel` tokens of context, and the rest queue with no limit (never a 503). SIGTERM
stops generation at once: streams in flight are cut, not drained. It closes kept-alive connections
the client still holds (47% of the requests of a closed loop here hit one), so a client must send
such a request again on a fresh connection (the builtin driver does).

Options: `parallel` (slots, default 32), `ctx_size` (KV-cache tokens over all slots, default
1024 per slot), `threads` (default: the cores this process may use), `gguf` (a GGUF file to serve
instead of the converted folder, e.g. a quantized one; its own tokenizer and chat template then
apply unless `chat_template` says otherwise), `chat_template` (default: ours; `"model"`: the
GGUF's own), `extra_args` (a list of more llama-server flags).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from targets.server.config import ServeConfig, positive
from targets.vllm import CHAT_TEMPLATE

READY_TIMEOUT_S = 300.0  # a first start converts the model to GGUF (~10 s for tiny)
REPO_ROOT = Path(__file__).resolve().parents[1]
VERSION = "0.3.36"  # llama-cpp-python's sdist, whose vendored llama.cpp `make llamacpp` builds
SLOT_CONTEXT = 1024  # default context per slot, vLLM's max_model_len here


@dataclass(frozen=True)
class LlamacppOptions:
    parallel: int = positive(32)  # --parallel: slots
    ctx_size: int | None = positive(None)  # --ctx-size, over all slots; None: 1024 per slot
    threads: int | None = positive(None)  # --threads; None: the cores this process may use
    gguf: str | None = None  # serve this GGUF instead of the converted model folder
    chat_template: str | None = None  # None: our transcript; "model": the GGUF's own
    extra_args: tuple[str, ...] = ()


def build_dir() -> Path:
    """Where `make llamacpp` built: `$PATTERNBENCH_LLAMACPP_DIR`, else `.llamacpp/`."""
    configured = os.environ.get("PATTERNBENCH_LLAMACPP_DIR")
    return Path(configured).expanduser() if configured else REPO_ROOT / ".llamacpp"


def server_binary() -> Path:
    return build_dir() / "build" / "bin" / "llama-server"


def converter() -> Path:
    return build_dir() / "src" / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"


def install_error(options: Mapping[str, Any] | None = None) -> str | None:
    """One line saying how to build llama-server when it or its converter is missing; else
    None."""
    if not os.access(server_binary(), os.X_OK):
        return (f"llamacpp: {server_binary()} does not exist; run `make llamacpp` to build it "
                f"(~10 min on 2 cores; llama.cpp from the llama-cpp-python {VERSION} sdist)")
    if not converter().exists():
        return f"llamacpp: {converter()} is missing; run `make llamacpp` again"
    return None


def gguf_path(folder: Path) -> Path:
    """Where the float32 GGUF of `folder` is cached: in the model cache, named by the folder's
    content hash and the converter's version."""
    from targets.model.store import cache_dir, model_hash

    return cache_dir() / f"{folder.name}-{model_hash(folder)}-llamacpp{VERSION}.f32.gguf"


def convert(folder: Path) -> Path:
    """The float32 GGUF of model `folder`, converted once (process-safe); `ValueError` with the
    converter's last line when it fails."""
    out = gguf_path(folder)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        argv = [sys.executable, str(converter()), str(folder), "--outfile", str(tmp),
                "--outtype", "f32"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise ValueError(f"convert_hf_to_gguf.py failed on {folder}: {last}")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return out


def command(cfg: ServeConfig, model_file: Path) -> list[str]:
    """The argv that starts llama-server for `cfg` on `model_file` (`ValueError` naming a bad
    option)."""
    opts = cfg.pattern_options(LlamacppOptions)
    threads = opts.threads or len(os.sched_getaffinity(0))
    argv = [str(server_binary()), "-m", str(model_file), "--host", cfg.host,
            "--port", str(cfg.port), "--parallel", str(opts.parallel),
            "--ctx-size", str(opts.ctx_size or SLOT_CONTEXT * opts.parallel),
            "--threads", str(threads), "--threads-batch", str(threads), "--metrics",
            "--alias", cfg.model, "--no-webui"]
    if opts.chat_template != "model":
        argv += ["--chat-template", opts.chat_template or CHAT_TEMPLATE]
    if cfg.api_key:
        argv += ["--api-key", cfg.api_key]
    return argv + list(opts.extra_args)


def model_file(cfg: ServeConfig) -> Path:
    """The GGUF to serve: option `gguf`, else the scenario's model converted to float32."""
    from targets.model.spec import parse_model_spec
    from targets.model.store import materialize

    opts = cfg.pattern_options(LlamacppOptions)
    if opts.gguf is not None:
        path = Path(opts.gguf).expanduser()
        if not path.is_file():
            raise ValueError(f"option gguf: {path} is not a file")
        return path
    spec = parse_model_spec(cfg.model)
    if spec.sim is not None:
        raise ValueError("a sim: model is a fake of ours; give llama.cpp a preset or a folder")
    return convert(materialize(spec))


def serve(cfg: ServeConfig) -> None:
    """Replace this process with llama-server (never returns); exit with one line if it is not
    built or an option is bad."""
    error = install_error(cfg.options)
    if error:
        raise SystemExit(error)
    try:
        argv = command(cfg, model_file(cfg))
    except ValueError as exc:
        raise SystemExit(f"llamacpp: {exc}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
