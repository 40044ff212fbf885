"""The telemetry /health series: one `GET /health` about once a second, on the run clock.

This is the coarse series drawn on the telemetry timeline beside GPU, CPU and queue depth. It is
separate from the driver's event-loop probe (`harness.drivers.probe`, `probe_ms` in summary.json),
which probes at the scenario's own, usually higher, rate; both measure the same thing — how long
the target takes to answer a request that does not touch the model — and both run outside the
driver's process, so a busy driver does not delay them.

Each `sample()` opens a new connection (as a load balancer's health check does) and returns one
`health` record:

    {"kind": "health", "t": 12.0, "latency_ms": 1.9, "status": 200, "error": null}

`t` is when the probe was sent. `latency_ms` is null when no 200 answer came (`error` says why:
an HTTP status, a refused connection, or no answer within `timeout_s`).
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Mapping

from harness.samples import Clock
from harness.telemetry.store import Record

HEALTH_TIMEOUT_S = 5.0


class HttpSeries:
    """A GET of `base_url + path` per sample, on a fresh connection (what a prober sees)."""

    def __init__(self, clock: Clock, base_url: str, path: str, timeout_s: float,
                 headers: Mapping[str, str] | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path.rstrip("/") + path) or "/"
        self.clock, self.timeout_s = clock, timeout_s
        self.headers = dict(headers or {})

    def get(self) -> tuple[int, bytes]:
        """(status, body); raises TimeoutError, OSError or HTTPException."""
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout_s)
        try:
            conn.request("GET", self.path, headers=self.headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


class HealthSeries(HttpSeries):
    """Probes `base_url + path` once per `sample()`."""

    kind = "health"

    def __init__(self, clock: Clock, base_url: str, path: str = "/health",
                 timeout_s: float = HEALTH_TIMEOUT_S,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(clock, base_url, path, timeout_s, headers)

    def sample(self) -> list[Record]:
        sent = self.clock.now()
        begin = time.perf_counter()
        record: Record = {"kind": "health", "t": round(sent, 6), "latency_ms": None,
                          "status": None, "error": None}
        try:
            status, _ = self.get()
            record["status"] = status
            if status == 200:
                record["latency_ms"] = round((time.perf_counter() - begin) * 1000, 3)
            else:
                record["error"] = f"HTTP {status}"
        except TimeoutError:
            record["error"] = f"no answer within {self.timeout_s:g} s"
        except (OSError, http.client.HTTPException) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        return [record]
