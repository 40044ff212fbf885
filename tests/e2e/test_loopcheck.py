"""The loop-blocking check (`harness.testing.loopcheck`) on two real target apps, built in-process
on a fast sim model: it catches `fastapi_blocking` and passes `fastapi_threadpool`. Under e2e:
building an app materializes the sim model folder and loads its tokenizer (seconds)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from harness.testing.loopcheck import assert_loop_responsive, measure_loop
from targets import fastapi_blocking, fastapi_threadpool
from targets.server.config import ServeConfig

MODEL = "sim:ttft_ms=20,tpot_ms=4,gil=release"  # 64 tokens ≈ 0.27 s, the GIL free
BODY = {"model": MODEL, "prompt": "Hello there", "max_tokens": 64, "stream": True,
        "ignore_eos": True}
BOUND_MS = 100.0


def blocking() -> FastAPI:
    return fastapi_blocking.create_app(ServeConfig(name="fastapi_blocking", model=MODEL,
                                                   device="cpu"))


def threadpool() -> FastAPI:
    return fastapi_threadpool.create_app(ServeConfig(name="fastapi_threadpool", model=MODEL,
                                                     device="cpu"))


@pytest.mark.asyncio
async def test_it_catches_the_blocking_app() -> None:
    app = blocking()
    async with app.router.lifespan_context(app):
        with pytest.raises(AssertionError, match="the event loop stalled") as caught:
            await assert_loop_responsive(app, "/v1/completions", BODY, max_stall_ms=BOUND_MS)
        report = await measure_loop(app, "/v1/completions", BODY)
    assert "run_in_executor" in str(caught.value)
    assert report.status == 200 and report.body_bytes > 0
    assert report.max_stall_ms > report.request_ms / 2  # the loop waited for the generation


@pytest.mark.asyncio
async def test_it_passes_the_thread_pool_app() -> None:
    app = threadpool()
    async with app.router.lifespan_context(app):
        report = await assert_loop_responsive(app, "/v1/completions", BODY,
                                              max_stall_ms=BOUND_MS)
    assert report.request_ms > BOUND_MS and len(report.probe_ms) > 3
    assert report.max_stall_ms < BOUND_MS


@pytest.mark.asyncio
async def test_a_request_shorter_than_the_bound_cannot_tell() -> None:
    app = threadpool()
    short = {**BODY, "max_tokens": 1}
    async with app.router.lifespan_context(app):
        with pytest.raises(AssertionError, match="less than the bound"):
            await assert_loop_responsive(app, "/v1/completions", short, max_stall_ms=5000)
