"""The builtin driver's request phases: each timeout is classified in the sample.

A real aiohttp server on 127.0.0.1 stalls where each test needs it, waiting on an event that is
only set at teardown; the connect stall is a listening socket whose accept queue is full.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiohttp
from aiohttp import web

from harness.drivers.builtin.streaming import client_timeout, fetch
from harness.drivers.job import LoadJob, Progress
from harness.samples import NO_EXTRA, Sample, SampleExtra
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint
from harness.workload.prompts import RequestSpec
from tests.jobs import job_for
from tests.waiting import wait_for

TOKEN = b'data: {"choices":[{"index":0,"text":" a","finish_reason":null}]}\n\n'
SPEC = RequestSpec(index=0, prompt="hi", prompt_tokens=1, max_tokens=4)
Handler = Callable[[web.Request, asyncio.Event], Awaitable[web.StreamResponse]]


def make_job(url: str, timeout_s: float = 10.0, connect_s: float = 5.0,
             first_token_s: float = 5.0, between_tokens_s: float = 5.0) -> LoadJob:
    """A job against `url` with these `[client]` timeouts; `fetch` is handed `SPEC` itself."""
    client = ClientSettings(connect_s=connect_s, first_token_s=first_token_s,
                            between_tokens_s=between_tokens_s)
    return job_for(LoadPoint("p", "closed", 1, 0, concurrency=1), url=url, timeout_s=timeout_s,
                   client=client)


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[str]:
    release = asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request, release)

    app = web.Application()
    app.router.add_post("/v1/completions", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # started above
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        release.set()
        await runner.cleanup()


async def stream_start(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    return resp


async def run_fetch(job: LoadJob) -> Sample:
    async with aiohttp.ClientSession(timeout=client_timeout(job)) as session:
        now = job.clock.now()
        return await fetch(session, job, SPEC, now, now, Progress())


async def against(handler: Handler, timeout_s: float = 10.0, **client: float) -> Sample:
    async with server(handler) as url:
        return await run_fetch(make_job(url, timeout_s, **client))


def test_no_first_token_is_a_first_token_timeout() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)  # headers go out, then nothing
        await release.wait()
        return resp

    sample = asyncio.run(against(handler, first_token_s=0.3))
    assert (sample.status, sample.extra.timeout) == ("timeout", "first_token")
    assert sample.extra.after_s is not None and 0.3 <= sample.extra.after_s < 5.0
    assert sample.error is not None and "first_token" in sample.error
    assert (sample.first_token_at, sample.done_at) == (None, None)


def test_a_stall_after_a_token_is_a_between_tokens_timeout() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        await resp.write(TOKEN)
        await release.wait()
        return resp

    sample = asyncio.run(against(handler, between_tokens_s=0.3, first_token_s=20.0))
    assert (sample.status, sample.extra.timeout) == ("timeout", "between_tokens")
    after_s = sample.extra.after_s
    assert after_s is not None and 0.3 <= after_s < 20.0  # the gap, not the first-token deadline
    assert sample.first_token_at is not None and len(sample.token_times) == 1


def test_a_steady_stream_that_runs_too_long_is_a_total_timeout() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        while not release.is_set():  # a token every 50 ms, never finishing
            await resp.write(TOKEN)
            with suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), 0.05)
        return resp

    sample = asyncio.run(against(handler, timeout_s=0.6, between_tokens_s=0.5))
    assert (sample.status, sample.extra.timeout) == ("timeout", "total")
    assert sample.extra.after_s is not None and sample.extra.after_s >= 0.6
    assert len(sample.token_times) >= 2


def test_a_complete_stream_is_ok_with_times_in_order() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        for _ in range(3):
            await resp.write(TOKEN)
        await resp.write(b'data: {"choices":[],"usage":{"completion_tokens":3}}\n\n')
        await resp.write(b"data: [DONE]\n\n")
        return resp

    s = asyncio.run(against(handler, first_token_s=2, between_tokens_s=2))
    assert (s.status, s.output_tokens, s.tokens_source, s.extra) == ("ok", 3, "usage", NO_EXTRA)
    assert s.done_at is not None and s.first_token_at is not None
    assert s.sent_at <= s.first_token_at <= s.token_times[-1] <= s.done_at


def test_a_stream_cut_before_done_is_truncated() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        await resp.write(TOKEN)
        await resp.write_eof()
        return resp

    sample = asyncio.run(against(handler))
    assert sample.status == "truncated"


def test_a_closed_port_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        sample = asyncio.run(run_fetch(make_job(f"http://127.0.0.1:{port}")))
    assert (sample.status, sample.extra) == ("conn_error", NO_EXTRA)
    assert sample.error is not None


def fill_accept_queue(listener: socket.socket, deadline_s: float = 5.0) -> list[socket.socket]:
    """Connect until a SYN is dropped (the accept queue is full): then connects stall."""
    held: list[socket.socket] = []
    port = listener.getsockname()[1]

    def one_more_stalls() -> bool:
        client = socket.socket()
        client.settimeout(0.2)
        try:
            client.connect(("127.0.0.1", port))
        except TimeoutError:
            client.close()
            return True
        held.append(client)
        return False

    wait_for(one_more_stalls, deadline_s, 0, "a connect to stall on the full accept queue")
    return held


def test_a_connect_that_never_completes_is_a_connect_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted
    held = fill_accept_queue(listener)
    try:
        port = listener.getsockname()[1]
        sample = asyncio.run(run_fetch(make_job(f"http://127.0.0.1:{port}", connect_s=0.3)))
    finally:
        for sock in held:
            sock.close()
        listener.close()
    assert (sample.status, sample.extra) == ("timeout", SampleExtra(timeout="connect"))


def test_an_outside_cancel_is_not_swallowed_as_a_timeout() -> None:
    async def main() -> Any:
        arrived = asyncio.Event()

        async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
            resp = await stream_start(request)
            arrived.set()
            await release.wait()
            return resp

        async with server(handler) as url:
            task = asyncio.create_task(run_fetch(make_job(url)))
            await arrived.wait()
            task.cancel()
            return await asyncio.gather(task, return_exceptions=True)

    (result,) = asyncio.run(main())
    assert isinstance(result, asyncio.CancelledError)
