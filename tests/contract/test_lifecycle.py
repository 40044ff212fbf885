"""Lifecycle under load: /health during a generation, 503 backpressure, cancellation on
disconnect, and graceful drain across SIGTERM.

No sleeps: each test polls `/metrics` (or the socket) with a deadline. The drain test stops its
server; the fleet restarts it if a later test needs it.
"""

from __future__ import annotations

import json
import signal
import socket
from urllib.parse import urlsplit

import pytest

from tests.contract.client import Stream, in_flight, metrics, request, token_payloads
from tests.contract.conftest import (
    MAX_CONCURRENCY,
    STALLS_HEALTH,
    Fleet,
    skip_unless_supported,
    supports,
    target_params,
)
from tests.waiting import wait_for

LONG = 1000  # tokens: far longer than any deadline below, within the cap and the context

pytestmark = pytest.mark.parametrize("target", target_params())


def gauge(url: str, name: str) -> float:
    return metrics(url).get(name, float("nan"))


def idle(url: str) -> None:
    """Wait until the previous test's requests have left the server."""
    wait_for(lambda: in_flight(url) == 0, 30, 0.02, "in_flight == 0")


def long_stream(fleet: Fleet, target: str, max_tokens: int = LONG) -> Stream:
    return Stream(fleet.get(target).url, {"prompt": "hi", "max_tokens": max_tokens,
                                          "ignore_eos": True}, fleet.auth(target))


def open_stream(fleet: Fleet, target: str, max_tokens: int) -> socket.socket:
    """A streamed completion on a raw socket, read until its first event has arrived."""
    parts = urlsplit(fleet.get(target).url)
    body = json.dumps({"prompt": "hi", "max_tokens": max_tokens, "ignore_eos": True,
                       "stream": True}).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in {
        "Host": parts.netloc, "Content-Type": "application/json",
        "Content-Length": str(len(body)), **fleet.auth(target)}.items())
    sock = socket.create_connection((parts.hostname, parts.port), timeout=120)
    sock.sendall(f"POST /v1/completions HTTP/1.1\r\n{head}\r\n".encode() + body)
    seen = b""
    while b"data: " not in seen:
        chunk = sock.recv(65536)
        assert chunk, "the stream ended before its first event"
        seen += chunk
    return sock


def already_received(sock: socket.socket) -> bytes:
    """What the server has sent on `sock` so far, without waiting for more."""
    sock.setblocking(False)  # with a timeout set, recv would wait for data to come
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_health_while_generating(fleet: Fleet, target: str) -> None:
    """/health answers during a long stream — except on fastapi_blocking, where it waits for it:
    that stall is the pattern's documented behaviour. Which came first is read from what the
    server had sent on the stream when /health answered (no clocks)."""
    url = fleet.get(target).url
    idle(url)
    stalls = target in STALLS_HEALTH
    sock = open_stream(fleet, target, 100 if stalls else LONG)
    try:
        assert request(url, "GET", "/health", timeout=120).status == 200
        ended = b"data: [DONE]" in already_received(sock)
    finally:
        sock.close()
    if stalls:
        assert ended, "/health answered mid-generation"
    else:
        assert not ended, "the long stream ended before /health answered"


def test_overload_503_with_retry_after(fleet: Fleet, target: str) -> None:
    skip_unless_supported(target, "overload")
    url = fleet.get(target).url
    idle(url)
    before = gauge(url, "patternbench_rejections_total")
    held: list[Stream] = []
    try:
        for _ in range(MAX_CONCURRENCY):
            held.append(long_stream(fleet, target))
        wait_for(lambda: gauge(url, "patternbench_in_flight") == MAX_CONCURRENCY, 30, 0.02,
                 "every slot to be taken")  # and the queue holds 0
        reply = request(url, "POST", "/v1/completions", {"prompt": "hi", "max_tokens": 2},
                        fleet.auth(target))
        assert reply.status == 503, reply.body
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.json()["error"]["message"]
        assert gauge(url, "patternbench_rejections_total") == before + 1
    finally:
        for stream in held:
            stream.close()


def test_disconnect_cancels_generation(fleet: Fleet, target: str) -> None:
    """A client leaving mid-stream frees its slot and stops its generation: the model-side token
    counter stops (a short request afterwards adds only its own tokens)."""
    skip_unless_supported(target, "disconnect")
    url = fleet.get(target).url
    idle(url)
    before = gauge(url, "patternbench_generated_tokens_total")
    stream = long_stream(fleet, target)
    events = stream.events()
    for _ in range(3):
        next(events)
    stream.close()
    idle(url)  # the slot is freed long before the generation could end on its own
    at_cancel = gauge(url, "patternbench_generated_tokens_total")
    assert at_cancel - before < LONG / 2
    reply = request(url, "POST", "/v1/completions",
                    {"prompt": "hi", "max_tokens": 5, "ignore_eos": True}, fleet.auth(target))
    assert reply.status == 200
    extra = gauge(url, "patternbench_generated_tokens_total") - at_cancel - 5
    assert extra < 20, f"{extra:.0f} tokens generated for the departed client after it left"
    assert metrics(url).get('patternbench_requests_total{outcome="cancelled"}', 0) >= 1


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_drain_finishes_stream_across_sigterm(fleet: Fleet, target: str) -> None:
    """SIGTERM with a stream in flight: new connections are refused at once, the stream still
    ends with every token and [DONE], then the process exits 0."""
    skip_unless_supported(target, "drain")
    srv = fleet.get(target)
    idle(srv.url)
    n = 200
    stream = long_stream(fleet, target, n)
    events = stream.events()
    first = next(events)
    assert srv.process is not None
    srv.process.send_signal(signal.SIGTERM)
    if supports(target, "drain_refuses_new"):
        wait_for(lambda: _refused(srv.url), 10, 0.02, "new connections to be refused")
        assert srv.process.poll() is None, "the server exited before its stream was done"
    payloads = [first, *events]
    assert payloads[-1] == "[DONE]"
    assert len(token_payloads(payloads)) == n
    assert srv.process.wait(timeout=60) == 0
