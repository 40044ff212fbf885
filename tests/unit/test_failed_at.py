"""The builtin driver dates every failure: `failed_at` is when it was seen, `done_at` stays None.

The server and job helpers are the request-phase tests' (`tests.unit.test_timeouts`).
"""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from harness.samples import Sample
from tests.unit.test_timeouts import TOKEN, against, make_job, run_fetch, stream_start


def assert_dated(sample: Sample) -> float:
    """The sample's `failed_at`, after checking it is set, not before sending, and alone."""
    assert sample.done_at is None
    assert sample.failed_at is not None and sample.sent_at <= sample.failed_at
    return sample.failed_at


def test_a_503_is_refused_and_dated_when_its_body_was_read() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        return web.Response(status=503, text="overloaded")

    sample = asyncio.run(against(handler))
    assert (sample.status, sample.http_status, sample.error) == ("refused", 503, "overloaded")
    failed_at = assert_dated(sample)
    assert sample.first_byte_at is not None and sample.first_byte_at <= failed_at


def test_a_timeout_is_dated_when_it_fired() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        await release.wait()
        return resp

    sample = asyncio.run(against(handler, first_token_s=0.3))
    assert sample.status == "timeout"
    assert 0.3 <= assert_dated(sample) - sample.sent_at < 5.0


def test_a_truncated_stream_and_a_refused_connection_are_dated() -> None:
    async def handler(request: web.Request, release: asyncio.Event) -> web.StreamResponse:
        resp = await stream_start(request)
        await resp.write(TOKEN)
        await resp.write_eof()
        return resp

    cut = asyncio.run(against(handler))
    assert cut.status == "truncated" and cut.token_times
    assert cut.token_times[-1] <= assert_dated(cut)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        refused = asyncio.run(run_fetch(make_job(f"http://127.0.0.1:{port}")))
    assert refused.status == "conn_error"
    assert_dated(refused)
