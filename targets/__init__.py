"""Serving patterns, one module each, listed explicitly (no auto-discovery).

Each module exposes `serve(config: ServeConfig) -> None`, which runs a real HTTP server in the
foreground until SIGTERM. The launcher starts it as `python -m targets NAME ...`. What the
patterns share lives once beside them: `targets.server` (config, the request flow and its
strategies, wire format, admission, drain, the FastAPI and Flask adapters), `targets.model`
(model specs, folders, engines) and `targets.batching` (the batch models and schedulers). A
pattern's private helper sits beside it (`replica.py` for `fastapi_processpool`, `proxy_pool.py`
for `fastapi_proxy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How the runner opens a target: `python` = `python -m targets NAME`; `vllm` = the same, after
# checking that .venv-vllm exists, with a long readiness wait; `external` = a URL the harness
# never starts or stops; `proxy` = `python -m targets NAME` after starting its upstream target;
# `llamacpp` = `python -m targets NAME` after checking that `make llamacpp` built llama-server;
# `framework` = `python -m targets NAME`, after checking that the framework's venv exists
# (`targets.framework_venv`: `ray_serve`, `litserve`), with a longer readiness wait.
TargetKind = Literal["python", "vllm", "external", "proxy", "llamacpp", "framework"]


@dataclass(frozen=True)
class TargetInfo:
    module: str
    pattern: str
    local: bool = True  # False: the harness does not start the model server itself
    kind: TargetKind = "python"
    ready_timeout_s: float | None = None  # None: the runner's default readiness wait
    event_loop: bool = True  # its HTTP server answers on an asyncio event loop (not threads)


TARGETS: dict[str, TargetInfo] = {
    "flask_threads": TargetInfo(
        "targets.flask_threads", "sync Flask on gunicorn's gthread worker, a thread per request",
        event_loop=False
    ),
    "fastapi_threadpool": TargetInfo(
        "targets.fastapi_threadpool", "asyncio + run_in_executor on a ThreadPoolExecutor"
    ),
    "fastapi_blocking": TargetInfo(
        "targets.fastapi_blocking", "async def calling the model inline: blocks the event loop"
    ),
    "fastapi_processpool": TargetInfo(
        "targets.fastapi_processpool", "asyncio front end, one model replica per worker process"
    ),
    "fastapi_dynamic_batching": TargetInfo(
        "targets.fastapi_dynamic_batching", "requests gathered in a window, run as one batch "
        "to completion"
    ),
    "fastapi_batching": TargetInfo(
        "targets.fastapi_batching", "continuous batching: requests join and leave the running "
        "batch at every decode step"
    ),
    "echo": TargetInfo(
        "targets.echo", "zero-work yardstick: streams N tokens at once, no model (calibrate)"
    ),
    "fastapi_proxy": TargetInfo(
        "targets.fastapi_proxy", "async gateway to an upstream target through one bounded "
        "connection pool", kind="proxy"
    ),
    "vllm": TargetInfo(
        "targets.vllm", "the real vLLM OpenAI server on the same model folder (`make vllm`)",
        kind="vllm", ready_timeout_s=300.0
    ),
    "llamacpp": TargetInfo(
        "targets.llamacpp", "llama.cpp's llama-server on the same weights as GGUF: slots, "
        "continuous batching in C++ (`make llamacpp`)", kind="llamacpp", ready_timeout_s=300.0
    ),
    # Frameworks that package our model (issue #24), each from a venv of its own.
    "ray_serve": TargetInfo(
        "targets.ray_serve", "our model in a Ray Serve deployment: replicas, @serve.batch, a "
        "local Ray instance (`make ray`)", kind="framework", ready_timeout_s=240.0
    ),
    "litserve": TargetInfo(
        "targets.litserve_target", "our model behind LitServe's LitAPI: worker processes, "
        "request batching, streaming (`make litserve`)", kind="framework", ready_timeout_s=240.0
    ),
    "external": TargetInfo(
        "targets.external", "any OpenAI-compatible server you run (url option); never started",
        local=False, kind="external", event_loop=False  # unknown: not claimed
    ),
}
