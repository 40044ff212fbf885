"""The one /health check behind both probers: a kept-alive connection or a fresh one per probe,
and the two record shapes it is written in."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import pytest

from harness.samples import Clock
from harness.telemetry.health import check, probe_loop, probe_summary
from harness.telemetry.summary import summarize_telemetry
from harness.telemetry.target_http import Endpoint
from tests.http_server import serving


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client closes
    connections: ClassVar[list[int]] = []  # one entry per accepted connection

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_GET(self) -> None:
        body, status = {"/health": (b"ok", 200), "/busy/health": (b"busy", 503)}.get(
            self.path, (b"no", 404))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.connections = []
    with serving(_Handler) as url:
        yield url


@pytest.mark.parametrize(("keep_alive", "connections"), [(True, 1), (False, 3)])
def test_the_event_loop_probe_keeps_one_connection_the_series_opens_one_each(
        server: str, keep_alive: bool, connections: int) -> None:
    endpoint = Endpoint(server, "/health", 5.0, keep_alive=keep_alive)
    answers = [check(endpoint, Clock()) for _ in range(3)]
    endpoint.close()
    assert [(a.status, a.error) for a in answers] == [(200, None)] * 3
    assert all(a.ms is not None and a.ms > 0 for a in answers)
    assert len(_Handler.connections) == connections


def test_an_answer_is_written_in_the_probe_shape_and_the_telemetry_shape(server: str) -> None:
    ok = check(Endpoint(server, "/health", 5.0), Clock())
    assert set(ok.probe_record()) == {"t", "ms", "status", "error"}
    record = ok.health_record()
    assert set(record) == {"kind", "t", "latency_ms", "status", "error"}
    assert (record["kind"], record["status"]) == ("health", 200)
    busy = check(Endpoint(server + "/busy", "/health", 5.0), Clock())  # the base URL's path kept
    assert busy.probe_record() | {"t": 0} == {"t": 0, "ms": None, "status": 503,
                                                "error": "HTTP 503"}


def test_no_answer_records_how_long_the_probe_waited() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = check(Endpoint(f"http://127.0.0.1:{port}", "/health", 5.0), Clock())
    record = refused.probe_record()
    assert (record["ms"], record["status"]) == (None, None)
    assert "ConnectionRefused" in record["error"] and record["waited_ms"] >= 0
    assert "waited_ms" not in refused.health_record()


class _SlowHandler(BaseHTTPRequestHandler):
    """/health answered after `delay_s`: a server whose event loop is stalled that long."""

    protocol_version = "HTTP/1.1"
    delay_s: ClassVar[float] = 0.35

    def do_GET(self) -> None:
        time.sleep(self.delay_s)  # the server's own delay, not a test synchronization
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def slow_server() -> Iterator[str]:
    with serving(_SlowHandler) as url:
        yield url


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


class _Lines(io.StringIO):
    """The probe's output; sets `stop` once `limit` lines are written."""

    def __init__(self, stop: threading.Event, limit: int) -> None:
        super().__init__()
        self.stop, self.limit = stop, limit

    def flush(self) -> None:
        if self.getvalue().count("\n") >= self.limit:
            self.stop.set()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


def run_probe(url: str, interval_s: float, timeout_s: float, limit: int) -> list[dict[str, Any]]:
    stop = threading.Event()
    out = _Lines(stop, limit)
    thread = threading.Thread(target=probe_loop, args=(url, interval_s, Clock(), out, stop,
                                                       timeout_s))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return out.records()


def test_a_timed_out_probe_is_censored_at_the_timeout(silent_server: str) -> None:
    answer = check(Endpoint(silent_server, "/health", 0.2), Clock())
    assert answer.censored and answer.waited_ms == 200.0
    assert answer.probe_record()["censored"] is True
    assert answer.health_record()["waited_ms"] == 200.0
    records = run_probe(silent_server, interval_s=0.05, timeout_s=0.2, limit=2)
    assert [(r["ms"], r["waited_ms"], r["censored"]) for r in records] == [(None, 200.0, True)] * 2
    assert all(r["missed"] >= 3 for r in records)  # 0.2 s waited at 0.05 s ticks
    summary = probe_summary(records, since=0.0)
    assert (summary.sent, summary.answered, summary.censored) == (2, 0, 2)
    assert summary.latency_ms is not None and summary.latency_ms.p50 == 200.0
    assert summary.missed_ticks == sum(r["missed"] for r in records)


@pytest.mark.slow  # waits out a deliberately slow server (~1 s): make test, not test-fast
def test_a_slow_answer_counts_the_ticks_it_made_the_probe_miss(slow_server: str) -> None:
    records = run_probe(slow_server, interval_s=0.1, timeout_s=5.0, limit=3)
    assert [r["status"] for r in records] == [200] * 3
    assert all(r["ms"] >= 350 and r["missed"] >= 3 for r in records)  # 0.35 s at 0.1 s ticks
    summary = probe_summary(records, since=0.0)
    assert (summary.answered, summary.censored) == (3, 0)
    assert summary.missed_ticks == sum(r["missed"] for r in records)


def test_the_telemetry_health_series_counts_a_timeout_censored_not_dropped(
        silent_server: str, server: str) -> None:
    records = [check(Endpoint(silent_server, "/health", 0.2), Clock()).health_record(),
               check(Endpoint(server, "/health", 5.0), Clock()).health_record()]
    health = summarize_telemetry(records, start=0.0, end=1e9).health
    assert (health.count, health.failed, health.censored) == (2, 1, 1)
    assert health.latency_ms is not None and health.latency_ms.count == 2
    assert health.latency_ms.max == 200.0
