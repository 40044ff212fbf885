"""Tokens produced in another thread, consumed by the event loop: `TokenChannel`.

A model runs in a worker thread (a thread pool, a batching loop, a process-pool reader) and the
response is written by the asyncio loop. The producer calls `put(token)`, `fail(exc)` and
`close()` from any thread; each hops onto the loop with `call_soon_threadsafe`, so the loop never
blocks on the producer. The consumer iterates `async for token in channel`.

    channel = TokenChannel(asyncio.get_running_loop())
    pool.submit(produce, channel)          # producer: channel.put(t) ...; channel.close()
    async for token in channel: ...        # raises what the producer passed to fail()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

_END = object()


class TokenChannel:
    """A one-producer, one-consumer token queue from any thread into one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.closed = False

    def _send(self, item: object) -> None:
        if self.loop.is_closed():
            return  # the server is gone; nobody is reading
        self.loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def put(self, token: int) -> None:
        self._send(token)

    def fail(self, exc: BaseException) -> None:
        """End the stream with an error; the consumer's `async for` raises it."""
        self._send(exc)

    def close(self) -> None:
        """End the stream normally. Calls after the first do nothing."""
        if not self.closed:
            self.closed = True
            self._send(_END)

    async def __aiter__(self) -> AsyncIterator[int]:
        while (item := await self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, int)
            yield item
