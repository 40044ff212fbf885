"""Checking one scenario value: a `ScenarioError` whose one-line message names the field.

    integer(8, "load.concurrency", 1)   # 8
    number("ten", "load.duration_s")    # ScenarioError: load.duration_s must be a number, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ScenarioError(ValueError):
    """A scenario file is malformed; the message says which field and what is expected."""


def integer(value: Any, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{name} must be >= {minimum}, got {value}")
    return value


def table(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{name} must be a table (key = value pairs), got {value!r}")
    return value


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{name} must be true or false, got {value!r}")
    return value


def number(value: Any, name: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{name} must be a number, got {value!r}")
    if value < minimum:
        raise ScenarioError(f"{name} must be >= {minimum}, got {value}")
    return float(value)


def parse_drivers(raw: Any) -> tuple[str, ...]:
    """`driver = "k6"` or `driver = ["builtin", "k6"]`: the driver names, each once."""
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ScenarioError(f"driver must be a driver name or a list of them, got {raw!r}")
    if len(set(names)) != len(names):
        raise ScenarioError(f"driver lists a driver twice: {raw!r}")
    return tuple(names)
