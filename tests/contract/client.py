"""A small blocking HTTP client for the contract suite (stdlib `http.client`, no pooling).

Each call opens its own connection, so a test controls exactly when a client connects, how long a
stream stays open and when it disconnects.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.drivers.sse import SSEParser
from harness.telemetry.scrape import parse_metrics, server_fields


def _conn(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, method: str, path: str, body: bytes | dict[str, Any] | None = None,
            headers: dict[str, str] | None = None, timeout: float = 60.0) -> Reply:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    conn = _conn(url, timeout)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=raw, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


class Stream:
    """One streaming request; `events()` yields each `data:` payload as it arrives."""

    def __init__(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None,
                 path: str = "/v1/completions", timeout: float = 60.0) -> None:
        self.conn = _conn(url, timeout)
        self.conn.request("POST", path, body=json.dumps({**body, "stream": True}).encode(),
                          headers={"Content-Type": "application/json", **(headers or {})})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.parser = SSEParser()

    def events(self) -> Iterator[str]:
        """Payloads as they arrive; the connection is closed at the end of the response."""
        while True:
            try:
                data = self.resp.read1(65536)
            except (http.client.IncompleteRead, OSError):
                data = b""  # the connection ended mid-response (an abort)
            if not data:
                self.close()
                return
            yield from self.parser.feed(data)

    def rest(self) -> list[str]:
        """Every remaining payload, up to the end of the response."""
        return list(self.events())

    def abort(self) -> None:
        """Disconnect from any thread: a reader blocked in `events()` sees the end."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Disconnect (the server sees the socket close)."""
        self.resp.close()
        self.conn.close()


# The fleet's key: llama-server guards /metrics with its --api-key (ours and vLLM's leave it
# open and ignore the header), so the suite reads /metrics with it, as a run with a key does.
METRICS_AUTH = {"Authorization": "Bearer contract-key"}


def metrics(url: str) -> dict[str, float]:
    """`/metrics` as {"name{labels}": value}, comments dropped."""
    text = request(url, "GET", "/metrics", headers=METRICS_AUTH).body.decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def in_flight(url: str) -> float | None:
    """Requests the server holds, from `/metrics` as the harness's telemetry reads it: our
    `patternbench_in_flight`, or vLLM's running plus waiting requests (None: not exported)."""
    text = request(url, "GET", "/metrics", headers=METRICS_AUTH).body.decode()
    value = server_fields(parse_metrics(text))["in_flight"]
    return None if value is None else float(value)


def stream_text(payloads: list[str]) -> str:
    """The text a stream carried: every choice's `text` (completions) or `delta.content` (chat),
    however the server spreads it over chunks."""
    out = []
    for p in payloads:
        if p == "[DONE]":
            continue
        for choice in json.loads(p).get("choices") or []:
            out.append(choice.get("text") or (choice.get("delta") or {}).get("content") or "")
    return "".join(out)


def token_payloads(payloads: list[str]) -> list[dict[str, Any]]:
    """The chunks that carry a token (a choice without finish_reason)."""
    out = []
    for p in payloads:
        if p == "[DONE]":
            continue
        obj = json.loads(p)
        choices = obj.get("choices") or []
        if choices and choices[0].get("finish_reason") is None:
            out.append(obj)
    return out
