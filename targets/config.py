"""How a target is started: address, model, device and pattern-specific options."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from targets.api import Limits


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

    def options_json(self) -> str:
        return json.dumps(dict(self.options))
