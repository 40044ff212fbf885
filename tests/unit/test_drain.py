"""The drain in the API's shape (`targets.server.drain`): after SIGTERM a request on a kept-alive
connection gets a 503 with `Connection: close` (model targets and the gateway alike), the queue is
refused with that 503 before the drain timeout ends (the gateway's pool queue too), and the
blocking pattern stops generating at the cutoff. Also `/openapi.json`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace

import pytest

import targets.fastapi_blocking
import targets.fastapi_threadpool
import targets.flask_threads
from harness.samples import Clock
from targets.fastapi_blocking import create_app as blocking_app
from targets.fastapi_proxy import create_app as proxy_app
from targets.fastapi_threadpool import create_app as threadpool_app
from targets.flask_threads import create_app as flask_app
from targets.model.load import load_engine
from targets.server.admission import AsyncAdmission, Slot, ThreadAdmission
from targets.server.api import APIError
from targets.server.config import ServeConfig, SharedOptions
from targets.server.drain import Drain, shutting_down
from targets.server.stats import Stats
from tests.stub_target import StubTarget
from tests.unit.test_flow import AsgiClient, WsgiClient, metric, sse_payloads
from tests.waiting import wait_for

MODEL = "sim:ttft_ms=0,tpot_ms=2"
BODY = {"prompt": "hello", "max_tokens": 4}


@pytest.fixture(autouse=True, scope="module")
def one_engine() -> Iterator[None]:
    """Each app here loads the same `sim:` engine once (loading its tokenizer takes seconds)."""
    cached = functools.cache(load_engine)
    with pytest.MonkeyPatch.context() as patch:
        for module in (targets.fastapi_blocking, targets.fastapi_threadpool,
                       targets.flask_threads):
            patch.setattr(module, "load_engine", cached)
        yield


def config(name: str, drain_timeout_s: float = 30.0, **options: object) -> ServeConfig:
    return ServeConfig(name, model=MODEL, device="cpu", options=options,
                       shared=SharedOptions(max_concurrency=1, max_queue=4,
                                            drain_timeout_s=drain_timeout_s))


def test_cutoff_leaves_a_margin_before_the_timeout() -> None:
    assert Drain(30).cutoff_s() == 29
    assert Drain(2).cutoff_s() == 1.5  # a short drain keeps most of its time
    seen: list[float] = []
    drain = Drain(10)
    drain.on_begin(seen.append)
    assert not drain.draining and not drain.past_cutoff()
    drain.begin()
    drain.begin()  # idempotent: listeners run once
    assert drain.draining and seen == [9]
    late: list[float] = []
    drain.on_begin(late.append)  # registered after the start: called at once
    assert late == [9]
    assert Drain(0).cutoff_s() == 0


@pytest.mark.parametrize("kind", ["asgi", "wsgi", "proxy"])
def test_requests_after_sigterm_get_503_and_connection_close(kind: str) -> None:
    with ExitStack() as stack:
        if kind == "wsgi":
            flask = flask_app(config("flask_threads"))
            client: AsgiClient | WsgiClient = WsgiClient(flask)
            drain = flask.extensions["patternbench_drain"]
        else:
            if kind == "asgi":
                app = threadpool_app(config("fastapi_threadpool"))
            else:  # the gateway, in front of a stub upstream
                upstream = stack.enter_context(StubTarget(Clock(), ttft_s=0))
                app = proxy_app(config("fastapi_proxy", upstream_url=upstream.url))
            client, drain = AsgiClient(app), app.state.drain
        answers_after_sigterm(client, drain, kind)


def answers_after_sigterm(client: AsgiClient | WsgiClient, drain: Drain, kind: str) -> None:
    assert client.request("POST", "/v1/completions", BODY).status == 200
    drain.begin()
    reply = client.request("POST", "/v1/completions", BODY)
    assert reply.status == 503, reply.body
    assert reply.json()["error"]["code"] == "shutting_down"
    assert reply.headers["retry-after"] == "1"
    if kind != "wsgi":  # gunicorn drops the header and closes the connection itself
        assert reply.headers["connection"] == "close"
    assert client.request("GET", "/health").status == 200  # probes still answer
    client.close()


def test_the_async_queue_is_refused_with_the_503() -> None:
    stats = Stats("t")

    async def main() -> list[Slot | BaseException]:
        admission = AsyncAdmission(1, 4, stats)
        slot = await admission.acquire()
        waiting = [asyncio.ensure_future(admission.acquire()) for _ in range(3)]
        await asyncio.sleep(0)  # let them queue
        assert admission.refuse_waiting(shutting_down()) == 3
        results = await asyncio.gather(*waiting, return_exceptions=True)
        slot.release()
        assert admission.running == 0
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, APIError) and r.status == 503 for r in results)
    assert stats.registry.get_sample_value("patternbench_queue_depth") == 0


def test_the_thread_queue_is_refused_with_the_503() -> None:
    admission = ThreadAdmission(1, 4, Stats("t"))
    slot = admission.acquire()
    errors: list[APIError] = []

    def queued() -> None:
        try:
            admission.acquire()
        except APIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=queued) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: admission.waiting == 2, 10, 0.001, "2 queued requests")
    admission.refuse_waiting(shutting_down())
    for t in threads:
        t.join(10)
    slot.release()
    assert [e.code for e in errors] == ["shutting_down"] * 2


def test_the_gateway_refuses_its_pool_queue_at_the_cutoff() -> None:
    """A request still waiting for a pooled upstream connection at the drain's cutoff gets the
    drain's 503, like one waiting for a model slot; the stream holding the connection goes on."""
    with StubTarget(Clock(), tokens=1000, gap_s=0.01, ttft_s=0) as upstream:
        cfg = config("fastapi_proxy", drain_timeout_s=0, upstream_url=upstream.url, pool_size=1)
        app = proxy_app(replace(cfg, shared=replace(cfg.shared, max_concurrency=8)))
        client = AsgiClient(app)
        body = {**BODY, "stream": True}
        with client.client.stream("POST", "/v1/completions", json=body) as held, \
                ThreadPoolExecutor(max_workers=1) as pool:
            chunks = held.iter_raw()
            next(chunks)  # the one pooled connection is taken
            queued = pool.submit(client.request, "POST", "/v1/completions", BODY)
            wait_for(lambda: metric(client, "patternbench_proxy_pool_waiting") == 1, 10, 0.01,
                     "a request queued for the pool")
            app.state.drain.begin()
            refused = queued.result(timeout=30)
            assert refused.status == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "shutting_down"
            assert next(chunks)  # the stream in flight still flows
        assert metric(client, 'patternbench_requests_total{outcome="rejected"}') == 1
        assert metric(client, "patternbench_proxy_pool_waiting") == 0
        client.close()


def test_the_blocking_pattern_stops_generating_at_the_cutoff() -> None:
    app = blocking_app(config("fastapi_blocking", drain_timeout_s=0))
    client = AsgiClient(app)
    body = {"prompt": "hi", "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with client.client.stream("POST", "/v1/completions", json=body) as r:
        chunks = r.iter_raw()
        first = next(chunks)
        app.state.drain.begin()  # SIGTERM's handler, between two tokens
        raw = first + b"".join(chunks)
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["error"]["code"] == "shutting_down"
    assert len(payloads) < 2000
    client.close()


def test_openapi_publishes_the_request_bodies_and_errors() -> None:
    client = AsgiClient(threadpool_app(config("fastapi_threadpool")))
    reply = client.request("GET", "/openapi.json")
    assert reply.status == 200
    doc = reply.json()
    schemas = doc["components"]["schemas"]
    for path, name in (("/v1/completions", "CompletionRequest"),
                       ("/v1/chat/completions", "ChatRequest")):
        op = doc["paths"][path]["post"]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{name}"
        assert {"200", "400", "404", "415", "503"} <= set(op["responses"])
    seed = schemas["CompletionRequest"]["properties"]["seed"]["anyOf"][0]
    assert (seed["minimum"], seed["maximum"]) == (0, 2**63 - 1)
    max_tokens = schemas["CompletionRequest"]["properties"]["max_tokens"]["anyOf"][0]
    assert max_tokens["maximum"] == config("x").limits.max_tokens_cap
    assert "ChatMessage" in schemas
    client.close()
