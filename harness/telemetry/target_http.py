"""A GET of one of the target's own endpoints (`/health`, `/metrics`), with `http.client`.

    endpoint = Endpoint("http://127.0.0.1:8123", "/metrics", timeout_s=5.0)
    status, body = endpoint.get()   # raises TimeoutError, OSError or http.client.HTTPException

A path is appended to the base URL's own path (`http://gw/v1` + `/health` → `/v1/health`).
`keep_alive=False` (default) opens a fresh connection per GET, as a load balancer's health check
does; `keep_alive=True` keeps one connection open across GETs and reopens it after a failure,
so what is timed is the server's answer, not the TCP handshake. `timeout_s` bounds the connect
and each socket read, in seconds.
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Mapping


class Endpoint:
    """GETs `base_url + path`; not thread-safe (one per sampler or prober)."""

    def __init__(self, base_url: str, path: str, timeout_s: float, *, keep_alive: bool = False,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path.rstrip("/") + path) or "/"
        self.timeout_s, self.keep_alive = timeout_s, keep_alive
        self.headers = dict(headers or {})
        self.conn: http.client.HTTPConnection | None = None

    def get(self) -> tuple[int, bytes]:
        """(status, body); raises TimeoutError, OSError or HTTPException (the connection is
        closed then, and a kept-alive one reopened by the next GET)."""
        conn = self.conn or self._connect()
        try:
            conn.request("GET", self.path, headers=self.headers)
            resp = conn.getresponse()
            answer = resp.status, resp.read()
        except BaseException:
            self.close(conn)
            raise
        if self.keep_alive:
            self.conn = conn
        else:
            conn.close()
        return answer

    def close(self, conn: http.client.HTTPConnection | None = None) -> None:
        """Close `conn` (default: the kept-alive connection), if any."""
        conn = conn or self.conn
        if conn is not None:
            conn.close()
        if conn is self.conn:
            self.conn = None

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout_s)
