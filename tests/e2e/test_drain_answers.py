"""The drain answers in the API's shape on real servers (uvicorn and gunicorn, and the gateway in
front of its upstream), across SIGTERM:

- requests still queued when the drain timeout ends get a 503 JSON error with `Retry-After`
  (not the server's plain-text 500);
- a request on a connection kept alive from before SIGTERM is not served as if nothing happened:
  gunicorn keeps such connections a moment and the flow answers 503 with `Connection: close`;
  uvicorn closes idle ones itself (a request racing that gets the 503);
- a gateway with 32 streams in flight lets every one of them finish before it exits.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness.run.launcher import TargetProcess, start_proxy, start_target
from tests.contract.client import Reply, Stream, metrics, request, token_payloads
from tests.waiting import wait_for

MODEL = "sim:ttft_ms=0,tpot_ms=20,gil=release"
LONG = {"prompt": "hi", "max_tokens": 1500, "ignore_eos": True}  # 30 s: outlasts every drain
TARGETS = ["fastapi_threadpool", "flask_threads", "fastapi_proxy"]
LIMITS = {"max_concurrency": 1, "max_queue": 4}


def start(name: str, log_path: Path) -> TargetProcess:
    """`name` with one slot and a queue of 4, draining for 2 s; the gateway in front of a
    `fastapi_threadpool` upstream (which drains on its own timeout, when it is stopped)."""
    drain = ["--drain-timeout", "2"]
    if name == "fastapi_proxy":
        return start_proxy(name, name, model=MODEL, device="cpu", log_path=log_path,
                           options={**LIMITS, "upstream": "fastapi_threadpool",
                                    "upstream_options": {"workers": 4}},
                           ready_timeout_s=120, extra_args=drain)
    options = {**LIMITS, "threads": 8} if name == "flask_threads" else LIMITS
    return start_target(name, name, model=MODEL, device="cpu", options=options,
                        log_path=log_path, ready_timeout_s=120, extra_args=drain)


@pytest.fixture(params=TARGETS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TargetProcess]:
    name = request.param
    target = start(name, tmp_path / f"{name}.log")
    try:
        yield target
    finally:
        target.stop(timeout_s=10)


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def queued(url: str) -> float:
    return metrics(url).get("patternbench_queue_depth", 0.0)


def test_the_drain_end_answers_the_queue_with_a_503_json(server: TargetProcess) -> None:
    running = Stream(server.url, LONG)
    first = next(running.events())
    assert server.process is not None and first
    with ThreadPoolExecutor(max_workers=2) as pool:
        waiting = [pool.submit(request, server.url, "POST", "/v1/completions",
                               {"prompt": "hi", "max_tokens": 4}) for _ in range(2)]
        wait_for(lambda: queued(server.url) == 2, 30, 0.02, "2 queued requests")
        server.process.send_signal(signal.SIGTERM)
        replies: list[Reply] = [w.result(timeout=30) for w in waiting]
    for reply in replies:
        assert reply.status == 503, reply.body
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["error"]["code"] == "shutting_down"
    running.close()
    assert server.process.wait(timeout=30) == 0


def test_a_kept_alive_connection_gets_503_and_is_closed_after_sigterm(
        server: TargetProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"prompt": "hi", "max_tokens": 2}).encode()
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    conn.request("POST", "/v1/completions", body=body, headers=headers)
    before = conn.getresponse()
    assert before.status == 200 and before.getheader("connection", "keep-alive") != "close"
    before.read()
    running = Stream(server.url, LONG)  # keeps the server draining
    next(running.events())
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: refused(server.url), 10, 0.02, "new connections to be refused")
    try:
        conn.request("POST", "/v1/completions", body=body, headers=headers)
        after = conn.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        # uvicorn closes idle kept-alive connections itself when its drain begins
        assert server.label != "flask_threads", "gunicorn keeps them a while: a 503 is due"
    else:
        data = json.loads(after.read())
        assert after.status == 503 and data["error"]["code"] == "shutting_down"
        assert after.getheader("connection") == "close"
    conn.close()
    running.close()


def test_a_gateway_finishes_its_streams_in_flight_across_sigterm(tmp_path: Path) -> None:
    """SIGTERM to the gateway with 32 streams in flight: none is truncated (each ends with its 64
    tokens and [DONE]), new connections are refused, and the gateway exits 0."""
    options = {"upstream": "fastapi_threadpool", "upstream_options": {"workers": 32}}
    with start_proxy("gateway", "fastapi_proxy", model="sim:ttft_ms=20,tpot_ms=20",
                     device="cpu", options=options, log_path=tmp_path / "gateway.log",
                     ready_timeout_s=120) as gateway:
        body = {"prompt": "hi", "max_tokens": 64, "ignore_eos": True}
        streams = [Stream(gateway.url, body) for _ in range(32)]
        events = [stream.events() for stream in streams]
        firsts = [next(e) for e in events]  # every stream is generating now
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGTERM)
        wait_for(lambda: refused(gateway.url), 10, 0.02, "new connections to be refused")
        payloads = [[first, *rest] for first, rest in zip(firsts, events, strict=True)]
        truncated = [p for p in payloads if p[-1] != "[DONE]" or len(token_payloads(p)) != 64]
        assert truncated == []
        assert gateway.process.wait(timeout=60) == 0
