"""A small OpenAI-style target for driver tests: a threaded HTTP server on 127.0.0.1 that answers
`/v1/chat/completions` in one of a few behaviours, and notes when each request arrived.

Behaviours (`StubTarget(mode=...)`):

- `ok`: after `ttft_s`, `tokens` SSE chunks `gap_s` apart, a usage chunk and `[DONE]` (chunked
  transfer encoding, keep-alive); a non-streamed request gets one JSON body with its usage.
- `busy`: 503 with an OpenAI error body. `stall`: never answers (until the server closes).
- `cut`: two tokens, then a chunk that promises more bytes than it sends, and the connection
  closes (a mid-stream close). `not_json`: 200 with a body that is not JSON.

`arrivals` holds the run-clock time (`Clock(origin_ns)`) at which each request's headers were
read: a driver's `sent_at` must come just before it, whatever clock the driver stamped on.
`left` counts the streams whose client went away midway (a write to its socket failed).

>>> with StubTarget(Clock()) as target:
...     target.url  # doctest: +ELLIPSIS
'http://127.0.0.1:...'
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from harness.samples import Clock


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {text}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        target = self.server.target
        target.arrived(target.clock.now())
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        mode = target.mode
        if mode == "busy":
            self._whole(503, {"error": {"message": "busy", "type": "overloaded"}})
        elif mode == "stall":
            target.closing.wait()
        elif mode == "not_json":
            self._whole(200, b"this is not json")
        elif body.get("stream"):
            self._stream(target)
        else:
            time.sleep(target.ttft_s)
            self._whole(200, {"choices": [{"text": "x" * target.tokens}],
                              "usage": {"completion_tokens": target.tokens}})

    def _whole(self, code: int, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, target: StubTarget) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(target.ttft_s)
        for n in range(target.tokens):
            if n:
                time.sleep(target.gap_s)
            try:
                self.wfile.write(_chunk(_event({"choices": [{"delta": {"content": f"t{n}"}}]})))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client closed its stream
                target.gone()
                self.close_connection = True
                return
            if target.mode == "cut" and n == 1:
                self.wfile.write(b"400\r\ndata: {\"choi")  # promises 1024 bytes, sends 15
                self.wfile.flush()
                self.close_connection = True
                return
        self.wfile.write(_chunk(_event({"choices": [], "usage": {
            "completion_tokens": target.tokens}})))
        self.wfile.write(_chunk(_event("[DONE]")) + b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    target: StubTarget


class StubTarget:
    """The server, started on entering and closed on leaving (see the module docstring)."""

    def __init__(self, clock: Clock, mode: str = "ok", *, ttft_s: float = 0.05,
                 tokens: int = 4, gap_s: float = 0.01) -> None:
        self.clock, self.mode = clock, mode
        self.ttft_s, self.tokens, self.gap_s = ttft_s, tokens, gap_s
        self.arrivals: list[float] = []
        self.left = 0
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.target = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def arrived(self, at: float) -> None:
        with self._lock:
            self.arrivals.append(at)

    def gone(self) -> None:
        with self._lock:
            self.left += 1

    def __enter__(self) -> StubTarget:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
