"""How a target is configured: where it listens, its model, and its options, parsed in one place.

`ServeConfig` is everything a target's `serve()` gets (address, model spec, device, API key and
the options). The options come in two parts:

- the shared ones every local target understands (`SharedOptions`, so a scenario can set them
  like any other): `max_concurrency` (requests running at once; default: the pattern's natural
  parallelism), `max_queue` (requests waiting for a slot before 503s), `drain_timeout_s` and
  `max_tokens_cap` (both override their `python -m targets` flags);
- the pattern's own (`threads`, `replicas`, ...), declared as a frozen dataclass of its own and
  read with `ServeConfig.pattern_options`.

Both are parsed by `parse_options`, which checks every value against its field's type and range,
so a typo or a bad value stops the target at start-up with a one-line `ValueError` that names the
option:

    @dataclass(frozen=True)
    class ThreadsOptions:
        threads: int = positive(8)
        workers: int = positive(1)

    parse_options(ThreadsOptions, {"threads": 16})        # ThreadsOptions(threads=16, workers=1)
    parse_options(ThreadsOptions, {"thread": 16})         # ValueError: unknown target option ...
    parse_options(ThreadsOptions, {"threads": "x"})       # ValueError: target option threads
                                                          #   must be a positive integer, got 'x'

Field types understood: `int`, `float` (an int is accepted and converted), `str`, `bool`,
`Literal[...]` of strings, `tuple[str, ...]` (given as a list), and any of them `| None` (None
then means "the pattern picks", e.g. a default that depends on another option). `positive()` and
`nonneg()` add a range (> 0, >= 0). A field without a default is required. A dataclass may check
more in `__post_init__` by raising `ValueError`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from targets.server.api import Limits

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
V = TypeVar("V")
Range = Literal["positive", "nonneg"]


def positive(default: V) -> V:
    """A field whose value must be > 0 (for an int: >= 1), defaulting to `default`."""
    return dataclasses.field(default=default, metadata={"range": "positive"})


def nonneg(default: V) -> V:
    """A field whose value must be >= 0, defaulting to `default`."""
    return dataclasses.field(default=default, metadata={"range": "nonneg"})


def parse_options(schema: type[T], options: Mapping[str, Any], *,
                  shared: Collection[str] = ()) -> T:
    """`options` as an instance of the dataclass `schema`; `ValueError` (one line) naming an
    unknown option (with the valid ones), a missing required one, or an ill-typed value.

    `shared` names options the caller parses elsewhere: only listed as valid in the message.
    """
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        valid = ", ".join(sorted({*fields, *shared})) or "none"
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown target option{plural} {', '.join(unknown)}; "
                         f"valid options: {valid}")
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in options:
            values[name] = _check(name, options[name], hints[name], spec.metadata.get("range"))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ValueError(f"target option {name} must be given")
    return schema(**values)


def _check(name: str, value: Any, hint: Any, rule: Range | None) -> Any:
    """`value` converted to `hint`, or `ValueError` saying what the option must be."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    ok, converted, what = _convert(value, hint, rule)
    if not ok:
        raise ValueError(f"target option {name} must be {what}, got {value!r}")
    return converted


def _convert(value: Any, hint: Any, rule: Range | None) -> tuple[bool, Any, str]:
    """(accepted, converted value, what an accepted value looks like) for one type."""
    origin = typing.get_origin(hint)
    if hint is bool:
        return isinstance(value, bool), value, "true or false"
    if hint is int or hint is float:
        kinds = (int,) if hint is int else (int, float)
        ok = isinstance(value, kinds) and not isinstance(value, bool) and _in_range(value, rule)
        article, noun = ("an", "integer") if hint is int else ("a", "number")
        what = {"positive": f"a positive {noun}", "nonneg": f"{article} {noun} >= 0",
                None: f"{article} {noun}"}[rule]
        return ok, (float(value) if ok and hint is float else value), what
    if hint is str:
        return isinstance(value, str), value, "a string"
    if origin is Literal:
        return value in typing.get_args(hint), value, "one of " + ", ".join(
            str(a) for a in typing.get_args(hint))
    if origin is tuple and typing.get_args(hint) == (str, ...):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value, "a list of strings"
    raise TypeError(f"options of type {hint} are not supported")  # a schema bug, not user input


def _in_range(value: float, rule: Range | None) -> bool:
    if rule == "positive":
        return value > 0
    return value >= 0 if rule == "nonneg" else True


@dataclass(frozen=True)
class SharedOptions:
    """The serving options every local target takes, beside its own."""

    max_concurrency: int | None = positive(None)  # None: the pattern's natural parallelism
    max_queue: int = nonneg(256)
    drain_timeout_s: float = nonneg(30.0)
    max_tokens_cap: int = positive(Limits.max_tokens_cap)

    def concurrency(self, natural: int) -> int:
        """Requests allowed to run at once: `max_concurrency`, else the pattern's `natural` one."""
        return self.max_concurrency if self.max_concurrency is not None else natural


SHARED_OPTIONS = frozenset(f.name for f in dataclasses.fields(SharedOptions))


def split_options(options: Mapping[str, Any]) -> tuple[SharedOptions, dict[str, Any]]:
    """The shared options, parsed (`ValueError` naming a bad one), and the pattern's own, raw."""
    shared = {k: v for k, v in options.items() if k in SHARED_OPTIONS}
    own = {k: v for k, v in options.items() if k not in SHARED_OPTIONS}
    return parse_options(SharedOptions, shared), own


@dataclass(frozen=True)
class ServeConfig:
    """Everything a target's `serve()` needs.

    `options` are the pattern's own, as given (parse them with `pattern_options`); the shared
    ones are already parsed into `shared`.
    """

    name: str
    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "tiny"
    device: str = "auto"
    options: Mapping[str, Any] = field(default_factory=dict)
    shared: SharedOptions = field(default_factory=SharedOptions)
    api_key: str | None = None
    torch_threads: int | None = None

    @property
    def limits(self) -> Limits:
        """Per-request limits: the shared `max_tokens_cap` and the default body size."""
        return Limits(max_tokens_cap=self.shared.max_tokens_cap)

    def pattern_options(self, schema: type[T]) -> T:
        """The pattern's own options as `schema` (`ValueError` naming any unknown or bad one)."""
        return parse_options(schema, self.options, shared=SHARED_OPTIONS)
