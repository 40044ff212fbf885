"""The one request flow (`targets.server.flow`) through both framework adapters and both
strategies, in process.

The same checks run against a FastAPI app (`fastapi_threadpool`, driven by Starlette's
TestClient, which streams and cancels the app when a stream is closed early) and a Flask app
(`flask_threads`, driven by Flask's test client), both on the `sim:` model with
`max_concurrency=1, max_queue=0`, so a second request while one runs gets the 503. The gateway
(`fastapi_proxy`: the same flow, forwarding upstream) runs in front of a stub upstream server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from flask import Flask

from harness.run.launcher import free_port
from harness.samples import Clock
from targets.fastapi_proxy import create_app as proxy_app
from targets.fastapi_threadpool import create_app as threadpool_app
from targets.flask_threads import create_app as flask_app
from targets.model.engine import ModelEngine
from targets.model.load import load_engine
from targets.server import asgi, wsgi
from targets.server.config import ServeConfig, SharedOptions
from targets.server.job import Job
from targets.server.stats import Stats
from tests.stub_target import StubTarget
from tests.waiting import wait_for

MODEL = "sim:ttft_ms=0,tpot_ms=2"
AUTH = {"Authorization": "Bearer k"}
BODY = {"prompt": "hello there", "max_tokens": 4, "ignore_eos": True}
LONG = {"prompt": "hi", "max_tokens": 2000, "ignore_eos": True, "stream": True}


def config(name: str) -> ServeConfig:
    return ServeConfig(name, model=MODEL, device="cpu", api_key="k",
                       shared=SharedOptions(max_concurrency=1, max_queue=0))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class AsgiClient:
    """An ASGI app behind Starlette's TestClient (lifespan hooks run)."""

    def __init__(self, app: Any) -> None:
        self.client = TestClient(app, raise_server_exceptions=False)  # 500s as the client sees them
        self.client.__enter__()

    def request(self, method: str, path: str, body: bytes | dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        content = json.dumps(body).encode() if isinstance(body, dict) else body
        r = self.client.request(method, path, content=content, headers=headers)
        return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    @contextmanager
    def stream(self, body: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        with self.client.stream("POST", "/v1/completions", json=body, headers=AUTH) as r:
            yield r.iter_raw()

    def close(self) -> None:
        self.client.__exit__(None, None, None)


class WsgiClient:
    """A Flask app behind its test client; a stream is read lazily and closed like gunicorn
    closes it for a departed client."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()

    def request(self, method: str, path: str, body: bytes | dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        r = self.client.open(path, method=method, data=data, headers=headers)
        return Answer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data())

    @contextmanager
    def stream(self, body: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        r = self.client.post("/v1/completions", json=body, headers=AUTH, buffered=False)
        try:
            yield (c if isinstance(c, bytes) else c.encode() for c in r.response)
        finally:
            r.close()

    def close(self) -> None:
        pass


Client = AsgiClient | WsgiClient


def metric(client: Client, name: str) -> float:
    text = client.request("GET", "/metrics").body.decode()
    values = [line.rpartition(" ")[2] for line in text.splitlines() if line.startswith(name + " ")]
    return float(values[0]) if values else 0.0


def settle(client: Client) -> None:
    wait_for(lambda: metric(client, "patternbench_in_flight") == 0, 10, 0.01,
             "every request to leave its slot")


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    made: Client = (AsgiClient(threadpool_app(config("fastapi_threadpool")))
                    if request.param == "asgi" else WsgiClient(flask_app(config("flask_threads"))))
    yield made
    made.close()


def sse_payloads(raw: bytes) -> list[str]:
    return [line.removeprefix(b"data: ").decode() for line in raw.split(b"\n\n") if line]


def test_whole_and_streamed_completions_end_ok(client: Client) -> None:
    ok = 'patternbench_requests_total{outcome="ok"}'
    before, tokens = metric(client, ok), metric(client, "patternbench_generated_tokens_total")
    whole = client.request("POST", "/v1/completions", BODY, AUTH)
    assert whole.status == 200 and whole.json()["usage"]["completion_tokens"] == 4
    streamed = client.request("POST", "/v1/completions", {**BODY, "stream": True}, AUTH)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.headers["cache-control"] == "no-cache"
    payloads = sse_payloads(streamed.body)
    assert payloads[-1] == "[DONE]" and len(payloads) == 4 + 2  # a chunk per token, the tail
    assert metric(client, ok) == before + 2
    assert metric(client, "patternbench_generated_tokens_total") == tokens + 8


def test_errors_are_openai_shaped(client: Client) -> None:
    no_key = client.request("POST", "/v1/completions", BODY)
    assert no_key.status == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
    assert no_key.headers["www-authenticate"] == "Bearer"
    assert client.request("GET", "/v1/models").status == 401
    assert client.request("GET", "/v1/models", headers=AUTH).json()["data"][0]["id"] == MODEL
    bad = client.request("POST", "/v1/completions", b"{not json", AUTH)
    assert bad.status == 400 and "not valid JSON" in bad.json()["error"]["message"]
    big = client.request("POST", "/v1/completions", b"x" * (2 << 20), AUTH)
    assert big.status == 413 and big.json()["error"]["code"] == "body_too_large"
    missing = client.request("GET", "/v1/nope")
    assert missing.status == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert client.request("GET", "/v1/completions").status == 405
    assert client.request("GET", "/health").json() == {"status": "ok"}


def test_overload_is_503_with_retry_after(client: Client) -> None:
    settle(client)
    rejected = metric(client, "patternbench_rejections_total")
    with client.stream(LONG) as held:
        next(held)  # the one slot is taken
        refused = client.request("POST", "/v1/completions", BODY, AUTH)
        assert refused.status == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
    assert metric(client, "patternbench_rejections_total") == rejected + 1
    settle(client)
    assert client.request("POST", "/v1/completions", BODY, AUTH).status == 200


def test_leaving_mid_stream_cancels_and_frees_the_slot(client: Client) -> None:
    settle(client)
    cancelled = 'patternbench_requests_total{outcome="cancelled"}'
    before = metric(client, cancelled)
    with client.stream(LONG) as events:
        next(events)
    settle(client)
    assert metric(client, cancelled) == before + 1
    at_close = metric(client, "patternbench_generated_tokens_total")
    # A 25-token request (~50 ms here) is the window: a generation still running for the
    # departed client would add about as many tokens again meanwhile.
    after = client.request("POST", "/v1/completions", {**BODY, "max_tokens": 25}, AUTH)
    assert after.status == 200
    assert metric(client, "patternbench_generated_tokens_total") - at_close - 25 < 3


def failing_after(engine: ModelEngine, n: int) -> Callable[[Job], Iterator[int]]:
    def generate(job: Job) -> Iterator[int]:
        for i, token in enumerate(engine.generate(job.ids, job.params, job.cancel)):
            if i == n:
                raise RuntimeError("the model fell over")
            yield token
    return generate


def failing_app(kind: str) -> Client:
    engine = load_engine(MODEL, "cpu")
    sync = failing_after(engine, 2)
    cfg = ServeConfig(kind, model=MODEL)
    if kind == "wsgi":
        return WsgiClient(wsgi.model_app(cfg, engine, sync, stats=Stats(kind), concurrency=1))

    async def generate(job: Job) -> AsyncIterator[int]:
        for token in sync(job):
            yield token

    return AsgiClient(asgi.model_app(cfg, engine, generate, stats=Stats(kind), concurrency=1))


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_failure_mid_stream_is_an_error_event(kind: str) -> None:
    client = failing_app(kind)
    streamed = client.request("POST", "/v1/completions", {**BODY, "stream": True})
    payloads = sse_payloads(streamed.body)
    assert streamed.status == 200 and payloads[-1] == "[DONE]" and len(payloads) == 2 + 2
    error = json.loads(payloads[-2])["error"]
    assert error["type"] == "server_error" and "the model fell over" in error["message"]
    assert metric(client, 'patternbench_requests_total{outcome="error"}') == 1
    whole = client.request("POST", "/v1/completions", BODY)
    assert whole.status == 500 and whole.json()["error"]["type"] == "server_error"
    assert metric(client, 'patternbench_requests_total{outcome="error"}') == 2
    assert metric(client, "patternbench_in_flight") == 0
    client.close()


@contextmanager
def gateway(upstream_url: str) -> Iterator[AsgiClient]:
    """`fastapi_proxy` in front of `upstream_url`, with the API key and limits of `config`."""
    cfg = ServeConfig("fastapi_proxy", model=MODEL, api_key="k",
                      options={"upstream_url": upstream_url},
                      shared=SharedOptions(max_concurrency=1, max_queue=0))
    client = AsgiClient(proxy_app(cfg))
    try:
        yield client
    finally:
        client.close()


def test_the_gateway_checks_a_request_before_it_forwards_it() -> None:
    with StubTarget(Clock(), tokens=1000, gap_s=0.01, ttft_s=0) as upstream, \
            gateway(upstream.url) as client:
        no_key = client.request("POST", "/v1/completions", BODY)
        assert no_key.status == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
        big = client.request("POST", "/v1/completions", b"x" * (2 << 20), AUTH)
        assert big.status == 413 and big.json()["error"]["code"] == "body_too_large"
        assert upstream.arrivals == []  # neither reached the upstream
        with client.stream(LONG) as held:
            next(held)  # the one slot is taken by a stream in flight
            refused = client.request("POST", "/v1/completions", BODY, AUTH)
            assert refused.status == 503 and refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "overloaded"
        assert len(upstream.arrivals) == 1
        settle(client)
        assert metric(client, 'patternbench_requests_total{outcome="cancelled"}') == 1


def test_the_gateway_passes_the_upstream_answer_through_untouched() -> None:
    with StubTarget(Clock(), tokens=3, gap_s=0, ttft_s=0) as upstream, \
            gateway(upstream.url) as client:
        whole = client.request("POST", "/v1/completions", BODY, AUTH)
        assert whole.status == 200
        assert whole.json() == {"choices": [{"text": "xxx"}], "usage": {"completion_tokens": 3}}
        streamed = client.request("POST", "/v1/completions", {**BODY, "stream": True}, AUTH)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        payloads = sse_payloads(streamed.body)
        assert [json.loads(p)["choices"] for p in payloads[:3]] == [
            [{"delta": {"content": f"t{n}"}}] for n in range(3)]
        assert payloads[-1] == "[DONE]"
        upstream.mode = "busy"
        busy = client.request("POST", "/v1/completions", BODY, AUTH)
        assert busy.status == 503 and busy.json() == {"error": {"message": "busy",
                                                                "type": "overloaded"}}
        outcomes = {o: metric(client, f'patternbench_requests_total{{outcome="{o}"}}')
                    for o in ("ok", "upstream_status")}
        assert outcomes == {"ok": 2, "upstream_status": 1}
        assert metric(client, "patternbench_proxy_pool_wait_seconds_count") == 3


def test_an_unreachable_upstream_is_a_502() -> None:
    with gateway(f"http://127.0.0.1:{free_port()}") as client:
        reply = client.request("POST", "/v1/completions", BODY, AUTH)
        assert reply.status == 502 and reply.json()["error"]["type"] == "upstream_error"
        assert metric(client, 'patternbench_requests_total{outcome="upstream_error"}') == 1
        assert metric(client, "patternbench_in_flight") == 0
