"""One request over aiohttp, read as it streams, turned into a `Sample`.

Times are stamped on the run clock as bytes arrive: `sent_at` once a connection slot is held,
`first_byte_at` when the response head arrives (as k6's `http_req_waiting` and locust measure
it), one token time per SSE token chunk (the time of the read that brought it), `done_at` at the
end.

Timeouts are split by phase and each is classified in the sample (status `timeout`, the phase in
`extra.timeout` and in `error`):

- `connect`: the TCP connect took longer than `job.client.connect_s` (aiohttp's `sock_connect`).
- `first_token`: no first token (first body byte without streaming) within
  `job.client.first_token_s` of sending.
- `between_tokens`: a later gap between stream reads passed `job.client.between_tokens_s`.
- `total`: the request as a whole passed `job.timeout_s`.

`extra.after_s` is how long after sending the timeout was detected. Every failed sample
carries `failed_at`: when the timeout fired, the connection failed, or the error body (a 503,
an error event, a stream cut before `[DONE]`) had been read.

A refused or reset connection is `conn_error`; a stream cut before `[DONE]` is `truncated`.
With `[fault] kind = "disconnect"` (`job.fault`), a request chosen by `abandon_after` closes its
connection after reading that many token chunks (the client leaves; the server sees the socket
close): it is `abandoned`, its token times up to then, `failed_at` and `extra.abandoned_at` the
moment it closed; not an error.
The read phases are watched by one loop timer per request (`Watchdog`): a stream read only
notes its time, and the timer, when it fires, either re-arms itself from the last read or
cancels the request — no timer work per token.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field, replace

import aiohttp

from harness.drivers.builtin.event_scan import EventScanner, classify
from harness.drivers.builtin.resend import Reuse, send_once_more
from harness.drivers.job import LoadJob, Progress
from harness.drivers.sse import Chunk, read_chunk
from harness.samples import (
    NO_EXTRA,
    Clock,
    Sample,
    SampleExtra,
    Status,
    TimeoutPhase,
    TokenSource,
)
from harness.workload.prompts import RequestSpec, request_body
from harness.workload.sessions import Reply


class Watchdog:
    """Cancels the current task when a read phase overruns; `expired` then names the phase.

    Deadlines are in event-loop time (`loop.time()`, seconds).
    """

    def __init__(self, job: LoadJob) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        start = self.loop.time()
        self.total_at = start + job.timeout_s
        self.gap = job.client.between_tokens_s
        self.phase: TimeoutPhase = "first_token"
        self.last = start
        self.expired: TimeoutPhase | None = None
        self.handle = self.loop.call_at(min(self.total_at, start + job.client.first_token_s),
                                        self._fire)

    def token_seen(self) -> None:
        """A read after the first token: the between-tokens gap counts from now."""
        self.last = self.loop.time()
        if self.phase == "first_token":  # the timer still waits for the first-token deadline
            self.phase = "between_tokens"
            self.handle.cancel()
            self.handle = self.loop.call_at(min(self.total_at, self.last + self.gap),
                                            self._fire)

    def _fire(self) -> None:
        now = self.loop.time()
        if self.phase == "between_tokens" and now < self.total_at:
            due = self.last + self.gap
            if now < due:
                self.handle = self.loop.call_at(min(due, self.total_at), self._fire)
                return
        self.expired = "total" if now >= self.total_at else self.phase
        if self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        self.handle.cancel()


@dataclass
class _Seen:
    """What happened to one request so far (filled while it streams)."""

    http_status: int | None = None
    first_byte_at: float | None = None
    token_times: list[float] = field(default_factory=list)
    output_tokens: int = 0
    source: TokenSource = "counted"
    status: Status = "ok"
    error: str | None = None
    extra: SampleExtra = NO_EXTRA
    done_at: float | None = None  # the response was read to its end (ok or not)
    failed_at: float | None = None  # a timeout fired or the connection failed
    reply: Reply | None = None  # where the answer's text goes, when asked for


def client_timeout(job: LoadJob) -> aiohttp.ClientTimeout:
    """aiohttp keeps the connect timeout; the read phases are ours (see `fetch`)."""
    return aiohttp.ClientTimeout(total=None, sock_connect=job.client.connect_s,
                                 connect=None, sock_read=None)


JSON_HEADERS = {"Content-Type": "application/json"}


async def fetch(session: aiohttp.ClientSession, job: LoadJob, spec: RequestSpec,
                scheduled_at: float, sent_at: float, progress: Progress,
                driver: str = "builtin", body: bytes | None = None,
                index: int | None = None, reply: Reply | None = None,
                fresh: aiohttp.ClientSession | None = None) -> Sample:
    """Send `spec` now (as `body` when given: its encoded JSON) and follow it to its end;
    never raises for what the server did. `index` is the request's number in the point
    (default `spec.index`; several requests may share one pooled spec). With `reply`, the
    answer's text and the server's token counts are kept there (`harness.workload.sessions`).
    With `fresh`, a request the server never received on a stale kept-alive connection of
    `session` is sent once more on `fresh` (`harness.drivers.builtin.resend`), one sample."""
    path = "/v1/chat/completions" if job.workload.api == "chat" else "/v1/completions"
    data = body if body is not None else json.dumps(
        request_body(spec, job.workload, job.model_name)).encode()
    seen = _Seen(reply=reply)
    number = spec.index if index is None else index
    progress.sent += 1
    watchdog = Watchdog(job)

    async def send(over: aiohttp.ClientSession, mark: Reuse) -> None:
        async with over.post(job.base_url + path, data=data, headers=JSON_HEADERS,
                             trace_request_ctx=mark) as resp:
            await _read_response(resp, job, seen, watchdog, abandon_after(job, number))

    try:
        if await send_once_more(send, session, fresh, lambda: seen.first_byte_at is not None):
            seen.extra = replace(seen.extra, resent=True)
        seen.done_at = job.clock.now()
    except asyncio.CancelledError:
        if watchdog.expired is None:
            raise  # cancelled from outside: not ours to swallow
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        phase, seen.failed_at = watchdog.expired, job.clock.now()
        seen.status, seen.error = "timeout", _timeout_text(phase, job)
        seen.extra = SampleExtra(timeout=phase, after_s=round(job.clock.now() - sent_at, 4))
    except aiohttp.ClientError as exc:
        seen.failed_at = job.clock.now()
        seen.status, seen.error, seen.extra = _client_error(exc, job)
    finally:
        watchdog.close()
    sample = _sample(job, spec, f"{job.target}-{job.point.name}-{number}", scheduled_at,
                     sent_at, seen, driver)
    progress.done += 1
    progress.errors += sample.failed  # an abandoned stream is the client's choice, no error
    progress.tokens += seen.output_tokens
    return sample


def abandon_after(job: LoadJob, index: int) -> int:
    """After how many token chunks request `index` of the point closes its stream; 0: it reads
    to the end. With a disconnect `job.fault`, a share `fault.share` of the requests is chosen,
    reproducibly from the seed and the index (a retry of the same request is chosen alike), and
    closes after `fault.after_tokens`."""
    fault = job.fault
    if fault is None or fault.kind != "disconnect" or fault.after_tokens <= 0 or fault.share <= 0:
        return 0
    chosen = random.Random(f"{job.seed}-{index}-disconnect").random() < fault.share
    return fault.after_tokens if chosen else 0


async def _read_response(resp: aiohttp.ClientResponse, job: LoadJob, seen: _Seen,
                         watchdog: Watchdog, abandon: int = 0) -> None:
    """Read the answer: an error body, a stream token by token (closed after `abandon` token
    chunks when > 0), or one JSON body."""
    seen.first_byte_at = job.clock.now()  # the response head: what k6 and locust see too
    seen.http_status = resp.status
    if resp.status != 200:
        text = await resp.text()
        seen.status = "refused" if resp.status == 503 else "http_error"
        seen.error = text[:300]
    elif job.workload.stream:
        seen.status, seen.error = await _read_stream(resp, seen, job.clock, watchdog, abandon)
    else:
        data = await resp.json()
        usage = data.get("usage") or {}
        seen.output_tokens = int(usage.get("completion_tokens", 0))
        seen.source = "usage" if usage else "unknown"
        if seen.reply is not None:
            choice = (data.get("choices") or [{}])[0]
            seen.reply.text = choice.get("text") or (choice.get("message") or {}).get(
                "content") or ""
            seen.reply.prompt_tokens = usage.get("prompt_tokens")
            seen.reply.output_tokens = seen.output_tokens


def _client_error(exc: aiohttp.ClientError,
                  job: LoadJob) -> tuple[Status, str, SampleExtra]:
    """How an aiohttp failure is classified: status, error text, extra."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # before: it is a connection error too
        return "timeout", _timeout_text("connect", job), SampleExtra(timeout="connect")
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "truncated", text, NO_EXTRA
    if isinstance(exc, aiohttp.ClientConnectionError):
        return "conn_error", text, NO_EXTRA
    return "http_error", text, NO_EXTRA


def _sample(job: LoadJob, spec: RequestSpec, request_id: str, scheduled_at: float,
            sent_at: float, seen: _Seen, driver: str) -> Sample:
    times = seen.token_times
    return Sample(
        request_id=request_id,
        target=job.target,
        point=job.point.name,
        scheduled_at=scheduled_at,
        sent_at=sent_at,
        status=seen.status,
        first_byte_at=seen.first_byte_at,
        first_token_at=times[0] if times else None,
        token_times=tuple(times),
        done_at=seen.done_at if seen.status == "ok" else None,
        failed_at=(None if seen.status == "ok" else
                   seen.failed_at if seen.failed_at is not None else seen.done_at),
        prompt_tokens=(seen.reply.prompt_tokens if seen.reply is not None
                       and seen.reply.prompt_tokens is not None else spec.prompt_tokens),
        output_tokens=seen.output_tokens,
        tokens_source=seen.source,
        http_status=seen.http_status,
        error=seen.error,
        stream=job.workload.stream,
        driver=driver,
        extra=seen.extra,
    )


def _timeout_text(phase: TimeoutPhase, job: LoadJob) -> str:
    client = job.client
    limit = {"connect": client.connect_s, "first_token": client.first_token_s,
             "between_tokens": client.between_tokens_s, "total": job.timeout_s}[phase]
    return f"timeout ({phase}): over {limit:g} s"


@dataclass
class _Tally:
    """What a stream's chunks said so far: ended with [DONE], the usage count, an error."""

    done: bool = False
    usage_tokens: int | None = None
    error: str | None = None
    reply: Reply | None = None  # keep the text and prompt count here (sessions only)

    def add(self, payloads: list[bytes], now: float, times: list[float]) -> None:
        for payload in payloads:
            chunk = classify(payload)
            if chunk.error:
                self.error = chunk.error
                return
            self.done = self.done or chunk.done
            if chunk.token:
                times.append(now)
            if chunk.usage_completion_tokens is not None:
                self.usage_tokens = chunk.usage_completion_tokens
            if self.reply is not None:
                self._keep(payload, chunk, self.reply)

    @staticmethod
    def _keep(payload: bytes, chunk: Chunk, reply: Reply) -> None:
        if chunk.token and not chunk.text:  # the fast path leaves a token's text undecoded
            chunk = read_chunk(payload.decode("utf-8", "replace"))
        reply.text += chunk.text
        if chunk.usage_prompt_tokens is not None:
            reply.prompt_tokens = chunk.usage_prompt_tokens


async def _read_stream(resp: aiohttp.ClientResponse, seen: _Seen, clock: Clock,
                       watchdog: Watchdog, abandon: int = 0) -> tuple[Status, str | None]:
    scanner = EventScanner()
    times = seen.token_times
    tally = _Tally(reply=seen.reply)
    async for raw in resp.content.iter_any():  # all bytes that arrived together
        tally.add(scanner.feed(raw), clock.now(), times)
        if tally.error:
            return "http_error", tally.error
        if times:
            watchdog.token_seen()
        if abandon and len(times) >= abandon and not tally.done:
            resp.close()  # the client leaves: its connection is closed, not pooled again
            seen.failed_at = clock.now()
            seen.extra = replace(seen.extra, abandoned_at=round(seen.failed_at, 6))
            seen.output_tokens = len(times)
            return "abandoned", None
    for payload in scanner.close():
        tally.done = tally.done or classify(payload).done
    if tally.usage_tokens is not None:
        seen.output_tokens, seen.source = tally.usage_tokens, "usage"
    else:
        seen.output_tokens = len(times)
    if seen.reply is not None:
        seen.reply.output_tokens = seen.output_tokens
    if not tally.done:
        return "truncated", "stream ended before [DONE]"
    return "ok", None
