"""Serving patterns, one module each, listed explicitly (no auto-discovery).

Each module exposes `serve(config: ServeConfig) -> None`, which runs a real HTTP server in the
foreground until SIGTERM. The launcher starts it as `python -m targets NAME ...`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetInfo:
    module: str
    pattern: str
    local: bool = True  # False: the harness does not start the model server itself


TARGETS: dict[str, TargetInfo] = {
    "flask_threads": TargetInfo(
        "targets.flask_threads", "sync Flask on gunicorn's gthread worker, a thread per request"
    ),
    "fastapi_threadpool": TargetInfo(
        "targets.fastapi_threadpool", "asyncio + run_in_executor on a ThreadPoolExecutor"
    ),
}
