"""Stale kept-alive connections: a request the server never received is sent again, once.

A server may close a kept-alive connection while it sits idle in the client's pool (llama.cpp's
`llama-server` does, and so does any server with a short keep-alive timeout). The next request
written to that connection fails before the server has read it: aiohttp raises `ClientOSError`
("Can not write request body") or, when the close crosses the write, `ServerDisconnectedError`
with no response head. aiohttp never retries a POST by itself, so without this the driver counted
those as `conn_error` — half of all requests against llama-server — though a real client (a
browser, Go's `http.Transport`) sends such a request again.

The rule here: a request that failed that way *on a reused connection and before any response
head arrived* is sent once more on a fresh connection (`Connections.fresh`, one connection per
request, never pooled) and recorded as one sample with `extra.resent`. A failure on a fresh
connection (nothing listening, a reset) is not resent: it stays a `conn_error`, and the resend
itself is never resent.

    async with Connections(limit=32, timeout=t, headers={}) as conns:
        sample = await fetch(conns.pooled, job, spec, ..., fresh=conns.fresh)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import SimpleNamespace, TracebackType

import aiohttp


class Reuse:
    """Set by the pooled session's trace when the request was given a kept-alive connection."""

    def __init__(self) -> None:
        self.reused = False


async def _on_reuse(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                    params: aiohttp.TraceConnectionReuseconnParams) -> None:
    mark = ctx.trace_request_ctx
    if isinstance(mark, Reuse):
        mark.reused = True


def reuse_trace() -> aiohttp.TraceConfig:
    """A trace that marks a request's `Reuse` (its `trace_request_ctx`) when its connection
    came from the pool."""
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_on_reuse)
    return trace


def never_delivered(exc: aiohttp.ClientError, mark: Reuse, answered: bool) -> bool:
    """Whether a failed request may be sent again: on a reused connection, no response head,
    and a write or read failure of that connection (not a failed connect)."""
    if answered or not mark.reused or isinstance(exc, aiohttp.ClientConnectorError):
        return False
    return isinstance(exc, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError)


async def send_once_more(send: Callable[[aiohttp.ClientSession, Reuse], Awaitable[None]],
                         pooled: aiohttp.ClientSession, fresh: aiohttp.ClientSession | None,
                         answered: Callable[[], bool]) -> bool:
    """`send(pooled, mark)`; if it failed as `never_delivered` says, `send(fresh, ...)` once.
    Returns whether it was resent; raises the failure that ended it."""
    mark = Reuse()
    try:
        await send(pooled, mark)
        return False
    except aiohttp.ClientError as exc:
        if fresh is None or not never_delivered(exc, mark, answered()):
            raise
    await send(fresh, Reuse())
    return True


class Connections:
    """The driver's two sessions: `pooled` (keep-alive, at most `limit` connections, traced for
    reuse) and `fresh` (a new connection per request, for resends only)."""

    def __init__(self, limit: int, timeout: aiohttp.ClientTimeout,
                 headers: Mapping[str, str]) -> None:
        self.pooled = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0), timeout=timeout,
            headers=dict(headers), trace_configs=[reuse_trace()])
        self.fresh = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0), timeout=timeout,
            headers=dict(headers))

    async def __aenter__(self) -> Connections:
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.pooled.close()
        finally:
            await self.fresh.close()
