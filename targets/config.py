"""How a target is started: address, model, device, the shared serving options and its own.

Shared options every local target understands (in `options`, so a scenario can set them):
`max_concurrency` (requests running at once; default: the pattern's natural parallelism),
`max_queue` (requests waiting for a slot before 503s; default `DEFAULT_MAX_QUEUE`),
`drain_timeout_s` and `max_tokens_cap` (both override their flags). Each pattern adds its own
(`threads`, `replicas`, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from targets.api import Limits

DEFAULT_MAX_QUEUE = 256
SHARED_OPTIONS = frozenset({"max_concurrency", "max_queue", "drain_timeout_s", "max_tokens_cap"})


@dataclass(frozen=True)
class ServeConfig:
    """Everything a target's `serve()` needs. `options` are the pattern's own knobs."""

    name: str
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "tiny"
    device: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    drain_timeout_s: float = 30.0
    torch_threads: int | None = None

    def opt(self, key: str, default: Any) -> Any:
        return self.options.get(key, default)

    def int_opt(self, key: str, default: int) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"target option {key} must be a positive integer, got {value!r}")
        return value

    def nonneg_int_opt(self, key: str, default: int) -> int:
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"target option {key} must be an integer >= 0, got {value!r}")
        return value

    def max_concurrency(self, default: int) -> int:
        """Requests allowed to run at once; `default` is the pattern's natural parallelism."""
        return self.int_opt("max_concurrency", default)

    def max_queue(self) -> int:
        """Requests allowed to wait for a slot; beyond it the server answers 503."""
        return self.nonneg_int_opt("max_queue", DEFAULT_MAX_QUEUE)

    def drain_s(self) -> float:
        """Seconds in-flight requests may take after SIGTERM (option, else the flag)."""
        value = self.options.get("drain_timeout_s", self.drain_timeout_s)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"drain_timeout_s must be a number >= 0, got {value!r}")
        return float(value)

    def check_options(self, own: Iterable[str]) -> None:
        """Raise `ValueError` naming any option neither shared nor in `own` (catches typos)."""
        known = SHARED_OPTIONS | set(own)
        unknown = sorted(set(self.options) - known)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown}; "
                             f"this target takes {sorted(known)}")

    def options_json(self) -> str:
        return json.dumps(dict(self.options))
