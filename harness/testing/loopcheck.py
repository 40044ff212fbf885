"""A loop-blocking check for your own ASGI app's test suite: does one streaming request stall
the event loop?

An `async def` endpoint that calls blocking code (a model's forward pass, `time.sleep`, a
synchronous client) holds the event loop for as long as the call runs: every other request,
`/health` included, waits. This check streams one request through the app in-process
(`httpx.AsyncClient` over `httpx.ASGITransport`, no server, no port) and, on the same event
loop, meanwhile probes a cheap route and times a periodic timer; it fails when the loop stalled
longer than a bound. With pytest-asyncio:

    import pytest
    from harness.testing.loopcheck import assert_loop_responsive

    @pytest.mark.asyncio
    async def test_generation_does_not_block_the_loop() -> None:
        app = create_app()  # your FastAPI / Starlette app
        await assert_loop_responsive(
            app, "/v1/completions",
            {"model": "m", "prompt": "Hello", "max_tokens": 64, "stream": True},
            probe_path="/health", max_stall_ms=100)

`measure_loop(...)` returns the `LoopReport` without judging it. A stall is the longest time the
loop could not run anything else: the largest of how late the timer woke (every `interval_s`)
and how long a probe took. The bound must sit well below the request's own duration (the check
says so when the request ended sooner than the bound: then it cannot tell). The app's lifespan
is not run (httpx's transport does not send lifespan events): build what startup would build
before passing the app.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

INTERVAL_S = 0.005


@dataclass(frozen=True)
class LoopReport:
    """What one check saw, in ms: the longest stall, probe latencies, the request's duration."""

    max_stall_ms: float
    max_timer_lag_ms: float
    probe_ms: tuple[float, ...]
    request_ms: float
    status: int
    body_bytes: int


async def measure_loop(app: Any, path: str, body: dict[str, Any], *,
                       probe_path: str = "/health", interval_s: float = INTERVAL_S,
                       headers: dict[str, str] | None = None) -> LoopReport:
    """Stream `POST path` with JSON `body` through `app` while probing `GET probe_path` and
    timing a timer every `interval_s`; the `LoopReport`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://loopcheck",
                                 headers=headers) as client:
        done = asyncio.Event()
        lags: list[float] = []
        probes: list[float] = []

        async def request() -> tuple[int, int, float]:
            start = time.perf_counter()
            try:
                async with client.stream("POST", path, json=body) as resp:
                    size = sum([len(chunk) async for chunk in resp.aiter_bytes()])
                return resp.status_code, size, (time.perf_counter() - start) * 1000
            finally:
                done.set()

        async def timer() -> None:
            while not done.is_set():
                due = time.perf_counter() + interval_s
                await asyncio.sleep(interval_s)
                lags.append(max(0.0, time.perf_counter() - due) * 1000)

        async def probe() -> None:
            while not done.is_set():
                start = time.perf_counter()
                await client.get(probe_path)
                probes.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(interval_s)

        (status, size, request_ms), _, _ = await asyncio.gather(request(), timer(), probe())
    lag = max(lags, default=0.0)
    return LoopReport(max_stall_ms=max(lag, *probes) if probes else lag, max_timer_lag_ms=lag,
                      probe_ms=tuple(probes), request_ms=request_ms, status=status,
                      body_bytes=size)


async def assert_loop_responsive(app: Any, path: str, body: dict[str, Any], *,
                                 probe_path: str = "/health", max_stall_ms: float = 100.0,
                                 headers: dict[str, str] | None = None) -> LoopReport:
    """`measure_loop`, then `AssertionError` (saying by how much) when the loop stalled longer
    than `max_stall_ms`, when the request did not answer 200, or when it ended before
    `max_stall_ms` (too short to tell a stall from its own duration)."""
    report = await measure_loop(app, path, body, probe_path=probe_path, headers=headers)
    if report.status != 200:
        raise AssertionError(f"loopcheck: {path} answered {report.status}, not 200")
    if report.request_ms < max_stall_ms:
        raise AssertionError(f"loopcheck: the request took {report.request_ms:.0f} ms, less "
                             f"than the bound of {max_stall_ms:g} ms: ask for a longer one")
    if report.max_stall_ms > max_stall_ms:
        raise AssertionError(
            f"loopcheck: the event loop stalled {report.max_stall_ms:.0f} ms (bound "
            f"{max_stall_ms:g} ms) during a {report.request_ms:.0f} ms request to {path}; "
            f"slowest {probe_path} probe {max(report.probe_ms, default=0):.0f} ms: blocking "
            "code runs on the loop (move it to a thread: run_in_executor / to_thread)")
    return report
