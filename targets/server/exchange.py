"""One HTTP exchange as the request flow sees it, whatever the web framework.

A framework adapter (`targets.server.asgi`, `targets.server.wsgi`) wraps its request as a `Call` (or
`SyncCall`) — a header, the body read through a `BodyReader`, a way to notice that the client
left — and turns what the flow answers into its own response: a `Reply` (a whole body) or an
`Events` (an SSE stream). `route_error` and `internal_error` give the framework's own 404 / 405 /
500 the same OpenAI shape as every `APIError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from targets.server.api import APIError, Limits

DISCARD_LIMIT_BYTES = 16 << 20  # an oversized body up to this size is read and dropped, so the
# client reads its 413 instead of a connection reset

B = TypeVar("B", AsyncGenerator[bytes, None], Iterator[bytes])
log = logging.getLogger("patternbench.target")


@dataclass(frozen=True)
class Reply:
    """A whole response."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def error(cls, exc: APIError) -> Reply:
        """OpenAI's error JSON for `exc`, with its status and headers (`Retry-After`, ...)."""
        return cls(exc.status, json.dumps(exc.body()).encode(), headers=exc.headers)


@dataclass(frozen=True)
class Events(Generic[B]):
    """A 200 `text/event-stream` response with `SSE_HEADERS`. The adapter sends `chunks` as they
    come, closes them when the client leaves, then calls `on_close` (once, in every case)."""

    chunks: B
    on_close: Callable[[], None]


AsyncReply = Reply | Events[AsyncGenerator[bytes, None]]
"""What the asyncio flow answers."""
ThreadReply = Reply | Events[Iterator[bytes]]
"""What the threaded flow answers."""


class Call(Protocol):
    """What the asyncio flow needs from one HTTP request."""

    def header(self, name: str) -> str | None: ...

    async def body(self, limits: Limits) -> bytes:
        """The body, read with a `BodyReader` (`APIError(413)` over `limits`)."""
        ...

    async def disconnected(self) -> None:
        """Return once the client has gone (it may never return)."""
        ...


class SyncCall(Protocol):
    """What the threaded flow needs from one HTTP request."""

    def header(self, name: str) -> str | None: ...

    def body(self, limits: Limits) -> bytes:
        """The body, read with a `BodyReader` (`APIError(413)` over `limits`)."""
        ...


class BodyReader:
    """The body-limit step: an adapter feeds it chunks as it reads them.

    A body declared over `DISCARD_LIMIT_BYTES` is refused before reading; one over
    `limits.max_body_bytes` is read on (and dropped) up to that size, so the 413 reaches the client.
    """

    def __init__(self, limits: Limits, content_length: str | None) -> None:
        self.limit = limits.max_body_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        declared = int(content_length) if content_length and content_length.isdigit() else 0
        if declared > DISCARD_LIMIT_BYTES:
            raise self._too_large()

    def _too_large(self) -> APIError:
        return APIError(413, f"request body is over the limit of {self.limit} bytes",
                        code="body_too_large")

    def feed(self, chunk: bytes) -> bool:
        """Take one chunk; False when reading further is pointless."""
        self.size += len(chunk)
        if self.size <= self.limit:
            self.chunks.append(chunk)
        return self.size <= DISCARD_LIMIT_BYTES

    def body(self) -> bytes:
        if self.size > self.limit:
            raise self._too_large()
        return b"".join(self.chunks)


def route_error(status: int, method: str, path: str, detail: str) -> APIError:
    """A 404 / 405 (or other framework-raised status) as an OpenAI-shaped error."""
    if status == 404:
        return APIError(404, f"no route {path}", type="not_found_error")
    return APIError(status, f"{method} {path}: {detail}")


def internal_error(exc: BaseException) -> APIError:
    """An unexpected exception as a 500 (logged; the client sees only its type)."""
    log.error("unhandled error", exc_info=exc)
    return APIError(500, f"internal error: {type(exc).__name__}", type="server_error")
