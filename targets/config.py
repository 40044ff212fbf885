"""How a target is started: address, model, device, the shared serving options and its own.

The shared options every local target understands (`SharedOptions`, so a scenario can set them
like any other): `max_concurrency` (requests running at once; default: the pattern's natural
parallelism), `max_queue` (requests waiting for a slot before 503s), `drain_timeout_s` and
`max_tokens_cap` (both override their `python -m targets` flags). Each pattern adds its own
(`threads`, `replicas`, ...) as a dataclass of its own, read with `ServeConfig.pattern_options`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from targets.api import Limits
from targets.options import nonneg, parse_options, positive

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


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
