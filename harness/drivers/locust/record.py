"""One request's record in the locustfile: filled from geventhttpclient's response, classified.

A record is a dict of `RECORD_KEYS`, written as one JSON line per request by every locust process
(see `harness.drivers.locust.locustfile`) and read back by `harness.drivers.locust.driver`. Its
times are seconds on the process's own clock; `off` places them on the run clock
(`harness.drivers.locust.clock`). A failed record has `fail` (when it failed) and no `done`.

Imported only by the locustfile (it uses gevent, which locust brings).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information

from harness.drivers.sse import SSEParser, read_chunk

RECORD_KEYS = ("i", "sched", "sent", "fb", "tok", "done", "fail", "status", "http", "n", "src",
               "err", "timeout", "off", "off_err")  # times: local seconds; run = local + off
NEVER_SENT = "never_sent"  # the status of an arrival no user took (only i, sched, off, off_err)


class Expired(BaseException):
    """Raised by a gevent timer when a request phase runs out (BaseException: no library code
    catches it on the way)."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


class Phases:
    """One gevent timer for the request phase under way, re-armed at every stream event."""

    def __init__(self, total_end: float) -> None:
        self.total_end = total_end
        self.timer: gevent.Timeout | None = None

    def arm(self, now: float, seconds: float, phase: str) -> None:
        self.close()
        left = self.total_end - now
        if left <= seconds:
            seconds, phase = left, "total"
        self.timer = gevent.Timeout(max(seconds, 0.0), Expired(phase))
        self.timer.start()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.close()
            self.timer = None


def failed_read(rec: dict[str, Any], exc: Exception, *, stream: bool) -> None:
    """Classify an exception raised while sending or reading a request."""
    text = f"{type(exc).__name__}: {exc}"[:300]
    code = rec["http"]
    if code is None:
        status = "conn_error"  # no status line: nothing was answered
    elif code != 200:
        status = "refused" if code == 503 else "http_error"  # the status had already said so
    elif isinstance(exc, (OSError, http.client.HTTPException)):
        status = "truncated"  # the connection closed or broke mid-body
    else:
        status = "http_error"  # a body the client cannot read (not JSON, ...)
    rec.update(status=status, err=text, n=len(rec["tok"]) if stream else rec["n"])


def settle(rec: dict[str, Any], now: float) -> None:
    """A failed record ends at `fail` (when it failed) and has no `done`."""
    if rec["status"] != "ok":
        rec["fail"] = rec["fail"] or rec["done"] or now
        rec["done"] = None


def read_body(resp: Any, rec: dict[str, Any], now: Callable[[], float]) -> None:
    """A whole body: an error status, or a non-streamed completion with its usage."""
    body = resp.content or b""
    rec["done"] = now()
    if resp.status_code != 200:
        rec.update(status="refused" if resp.status_code == 503 else "http_error",
                   err=body[:300].decode("utf-8", "replace"))
    else:
        usage = json.loads(body).get("usage") or {}
        rec["n"], rec["src"] = usage.get("completion_tokens", 0), "usage"


def read_events(raw: Any, rec: dict[str, Any], phases: Phases, now: Callable[[], float],
                 gap_s: float) -> None:
    """An SSE stream read event by event: token times, usage, [DONE] or the reason it broke."""
    parser = SSEParser()
    tokens: list[float] = rec["tok"]
    usage_tokens: int | None = None
    done = False
    while event := raw.readline(b"\n\n"):
        at = now()
        for payload in parser.feed(event):
            chunk = read_chunk(payload)
            if chunk.error:
                rec.update(status="http_error", err=chunk.error)
                return
            done = done or chunk.done
            if chunk.token:
                tokens.append(at)
            if chunk.usage_completion_tokens is not None:
                usage_tokens = chunk.usage_completion_tokens
        if tokens:
            phases.arm(at, gap_s, "between_tokens")
    rec["done"] = now()
    rec["n"], rec["src"] = ((usage_tokens, "usage") if usage_tokens is not None
                            else (len(tokens), "counted"))
    if not done:
        rec.update(status="truncated", err="stream ended before [DONE]", fail=rec["done"],
                   done=None)
