"""A request the server never received on a stale kept-alive connection is sent again once, on a
fresh connection, and counted once (harness/drivers/builtin/resend.py).

The server here is a real one on a socket, speaking just enough HTTP/1.1 by hand: it keeps each
connection alive after an answer (as llama-server does) but drops it when the next request
arrives on it, without answering — what a client sees when the server closed an idle kept-alive
connection just as the client reused it. aiohttp then fails before any response head.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from harness.drivers.builtin.driver import BuiltinDriver
from harness.drivers.builtin.resend import Connections
from harness.drivers.builtin.streaming import client_timeout, fetch
from harness.drivers.job import LoadJob, Progress
from harness.samples import Sample
from harness.scenario.types import LoadPoint, Workload
from harness.workload.request_pool import RequestPool
from tests.jobs import NOWHERE, job_for

STREAM = b"".join([
    b'data: {"choices":[{"index":0,"text":" a","finish_reason":null}]}\n\n' * 3,
    b'data: {"choices":[{"index":0,"text":"","finish_reason":"length"}],'
    b'"usage":{"prompt_tokens":8,"completion_tokens":3,"total_tokens":11}}\n\n',
    b"data: [DONE]\n\n",
])


@dataclass
class Tally:
    answered: int = 0
    dropped: int = 0  # requests that arrived on a kept-alive connection and were dropped


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body; None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return await reader.readexactly(length)


def answer(body: bytes) -> bytes:
    """A streamed completion of 3 tokens, kept alive (no `Connection: close`)."""
    assert json.loads(body)["stream"] is True
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Content-Length: " + str(len(STREAM)).encode() + b"\r\n\r\n" + STREAM)


@asynccontextmanager
async def stale_server(answer_first_only: bool = False) -> AsyncIterator[tuple[str, Tally]]:
    """Answers the first request of each connection and drops the connection when a second
    arrives; `answer_first_only`: answers only the very first request it gets."""
    tally = Tally()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        try:
            while (body := await read_request(reader)) is not None:
                if served or (answer_first_only and tally.answered):
                    tally.dropped += 1
                    return
                writer.write(answer(body))
                await writer.drain()
                served += 1
                tally.answered += 1
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", tally


def stream_job(url: str, requests: int, concurrency: int) -> LoadJob:
    point = LoadPoint("c", "closed", 60, 0, concurrency=concurrency, max_requests=requests)
    return job_for(point, url=url, workload=Workload(prompt_tokens=8, output_tokens=3,
                                                     stream=True))


def test_requests_on_stale_connections_are_resent_and_counted_once() -> None:
    async def scenario() -> tuple[list[Sample], Progress, Tally]:
        async with stale_server() as (url, tally):
            job = stream_job(url, requests=40, concurrency=4)
            progress = Progress()
            samples = await asyncio.to_thread(BuiltinDriver().run, job, progress)
            return samples, progress, tally

    samples, progress, tally = asyncio.run(scenario())
    assert [s.status for s in samples] == ["ok"] * 40
    assert len({s.request_id for s in samples}) == 40
    assert progress.sent == progress.done == 40 and progress.errors == 0
    assert tally.answered == 40  # the server answered each request exactly once
    assert tally.dropped > 0  # the stale path was taken: every reused connection was dropped
    assert sum(bool(s.extra.resent) for s in samples) == tally.dropped
    assert all(s.output_tokens == 3 for s in samples)


async def fetch_twice(url: str) -> tuple[Sample, Sample]:
    job = stream_job(url, requests=2, concurrency=1)
    pool = RequestPool(job, None)
    async with Connections(1, client_timeout(job), {}) as conns:
        samples = []
        for index in range(2):
            now = job.clock.now()
            samples.append(await fetch(conns.pooled, job, pool.spec(index), now, now,
                                       Progress(), body=pool.body(index), fresh=conns.fresh))
    return samples[0], samples[1]


def test_a_resend_that_fails_too_is_one_conn_error_not_another_resend() -> None:
    async def scenario() -> tuple[Sample, Sample, Tally]:
        async with stale_server(answer_first_only=True) as (url, tally):
            first, second = await fetch_twice(url)
            return first, second, tally

    first, second, tally = asyncio.run(scenario())
    assert first.status == "ok" and first.extra.resent is None
    assert second.status == "conn_error"
    assert tally.dropped == 2  # the reused connection, then the fresh one: sent twice, no more


def test_nothing_listening_is_a_conn_error_and_never_resent() -> None:
    async def scenario() -> tuple[Sample, Sample]:
        return await fetch_twice(NOWHERE)

    first, second = asyncio.run(scenario())
    for sample in (first, second):
        assert sample.status == "conn_error"
        assert sample.extra.resent is None
        assert sample.error is not None and "Cannot connect" in sample.error
