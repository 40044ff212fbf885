"""The one /health check behind both probers: a kept-alive connection or a fresh one per probe,
and the two record shapes it is written in."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from harness.samples import Clock
from harness.telemetry.endpoint import Endpoint
from harness.telemetry.health import check


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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


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
