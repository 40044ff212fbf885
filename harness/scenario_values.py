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
