"""One request's life in every local target, written once for every web framework:

    auth → body (size limit) → parse and validate → admission → job → complete | stream → outcome

A request arrives as a `Call` — what the flow needs from the framework: a header, the body within
the limits, a way to notice that the client left — and leaves as a `Reply` (a whole body) or an
`Events` (an SSE stream), all in `targets.server.exchange`. The framework adapters only
translate those and add what never reaches a model (`/health`, `/metrics`, error rendering,
drain): `targets.server.asgi` (FastAPI on uvicorn) and `targets.server.wsgi` (Flask on gunicorn).
A gateway (`fastapi_proxy`) takes the same steps with its own forwarding in place of the job.

Every request that took an admission slot ends exactly once as an `Outcome`: its slot is freed
and `patternbench_requests_total{outcome}` counts how it ended (`ok`, `error`, `cancelled`, or a
gateway's `upstream_error` / `upstream_status`; `rejected` is counted by admission). A client
that leaves cancels its generation (`job.cancel`, and the token iterator is closed).

`AsyncFlow` runs a pattern whose `generate(job)` is an async iterator of token ids (asyncio);
`ThreadFlow` one whose `generate(job)` is a plain iterator, driven by the request's own thread.
They share every step; only how they wait differs (`await` or blocking):

    flow = AsyncFlow(cfg, engine, generate, stats, concurrency=4)
    reply = await flow.respond(call, "completions")   # Reply | Events; raises APIError
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator

from targets.server.admission import AsyncAdmission, Slot, ThreadAdmission
from targets.server.api import (
    APIError,
    Kind,
    check_api_key,
    check_content_type,
    check_model,
    error_event,
    model_list,
    parse_request,
)
from targets.server.config import ServeConfig
from targets.server.drain import Drain
from targets.server.exchange import Call, Events, Reply, SyncCall
from targets.server.job import Job, ModelInfo
from targets.server.stats import Stats

TokenStream = Callable[[Job], AsyncIterator[int]]
"""An asyncio pattern's output token ids for one job. It must stop soon after `job.cancel` is set
and release what it holds when closed early (`aclose()`)."""

SyncTokenStream = Callable[[Job], Iterator[int]]
"""A threaded pattern's output token ids for one job, produced on the request's thread."""

Down = Callable[[], "str | None"]
"""Why the pattern's engine cannot serve (its loop died), or None while it can: `/health` answers
503 with the reason and every request fails fast with it."""

log = logging.getLogger("patternbench.target")


class Outcome:
    """A request holding an admission slot. `end()` frees the slot and counts the outcome, once:
    the one given, else `outcome` as it stands (set it as the request progresses)."""

    def __init__(self, slot: Slot, stats: Stats, outcome: str) -> None:
        self._slot: Slot | None = slot
        self.stats = stats
        self.outcome = outcome

    @property
    def ended(self) -> bool:
        return self._slot is None

    def end(self, outcome: str | None = None) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
            self.stats.requests.labels(outcome or self.outcome).inc()


class Generation(Outcome):
    """An admitted job: its tokens become SSE chunks or a final body (`count`: also count them in
    `patternbench_generated_tokens`, when the pattern's producer does not)."""

    def __init__(self, job: Job, slot: Slot, stats: Stats, outcome: str, eos: int,
                 count: bool) -> None:
        super().__init__(slot, stats, outcome)
        self.job = job
        self.eos = eos
        self.count = count

    def add(self, token: int) -> None:
        if self.count:
            self.stats.tokens.inc()
        self.job.add(token)

    def chunk(self, token: int) -> bytes:
        if self.count:
            self.stats.tokens.inc()
        return self.job.on_token(token)

    def tail(self) -> bytes:
        return self.job.tail(self.eos)

    def body(self) -> Reply:
        return Reply.json(self.job.response(self.eos))

    def failed(self, exc: Exception) -> bytes:
        """After a mid-stream failure (headers are sent): the error inside the stream."""
        log.exception("generation failed mid-stream")
        self.outcome = "error"
        if isinstance(exc, APIError):
            return error_event(exc)
        return error_event(APIError(500, f"generation failed: {exc}", type="server_error"))


class _ModelFlow:
    """The steps both flows share: auth, drain and engine checks, validation, the job's start,
    `/v1/models`. A request names the served model (its name, or the model spec the target was
    started with) or none; `drain` (default: one of `cfg`'s drain timeout) is begun by the
    adapter on SIGTERM; `down` says when the engine died."""

    def __init__(self, cfg: ServeConfig, model: ModelInfo, stats: Stats,
                 counts_tokens: bool, drain: Drain | None, down: Down | None) -> None:
        self.api_key = cfg.api_key
        self.limits = cfg.limits
        self.model = model
        self.served = (model.name, cfg.model)
        self.stats = stats
        self.count = not counts_tokens
        self.started = int(time.time())
        self.drain = drain or Drain(cfg.shared.drain_timeout_s)
        self.down = down

    def authorize(self, authorization: str | None) -> None:
        check_api_key(authorization, self.api_key)

    def check_serving(self) -> None:
        """503 while draining or with the engine down: fail fast, in the API's shape."""
        if self.drain.draining:
            raise self.drain.refusal()
        reason = self.down() if self.down is not None else None
        if reason is not None:
            raise APIError(503, f"the engine is down: {reason}", type="server_error",
                           code="engine_down")

    def job(self, kind: Kind, content_type: str | None, body: bytes) -> Job:
        """Parse and validate against the limits and the model (raises `APIError` 400 / 404 /
        413 / 415)."""
        check_content_type(content_type)
        request = parse_request(body, kind, self.limits)
        check_model(request.model, self.served)
        return Job.create(kind, request, self.model, self.limits)

    def start(self, job: Job, slot: Slot) -> Generation:
        """A streamed job that stops early was cancelled; a whole one that raises, an error."""
        outcome = "cancelled" if job.stream else "error"
        return Generation(job, slot, self.stats, outcome, self.model.eos_token_id, self.count)

    def model_list(self, authorization: str | None) -> Reply:
        self.authorize(authorization)
        return Reply.json(model_list(self.model.name, self.model.max_context, self.started))


class AsyncFlow(_ModelFlow):
    """The flow on an asyncio event loop; `generate(job)` is an async iterator.

    `concurrency` is the pattern's natural parallelism (the default of the shared option
    `max_concurrency`): that many jobs run `generate` at once, `max_queue` more wait, the rest get
    503. `counts_tokens`: the pattern's producer (a worker thread or process) counts tokens itself,
    so tokens a departed client never read are counted too; otherwise they are counted here.
    """

    def __init__(self, cfg: ServeConfig, model: ModelInfo, generate: TokenStream, stats: Stats,
                 *, concurrency: int, counts_tokens: bool = False, drain: Drain | None = None,
                 down: Down | None = None) -> None:
        super().__init__(cfg, model, stats, counts_tokens, drain, down)
        self.generate = generate
        self.admission = AsyncAdmission(cfg.shared.concurrency(concurrency),
                                        cfg.shared.max_queue, stats)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.drain.on_begin(self._on_drain)

    def _on_drain(self, cutoff_s: float) -> None:
        """At the drain's cutoff, refuse the queue (scheduled from the signal handler)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.call_later, cutoff_s, self._cut)

    def _cut(self) -> None:
        self.admission.refuse_waiting(self.drain.refusal())

    async def respond(self, call: Call, kind: Kind) -> Reply | Events[AsyncGenerator[bytes, None]]:
        self._loop = self._loop or asyncio.get_running_loop()
        self.authorize(call.header("authorization"))
        self.check_serving()
        job = self.job(kind, call.header("content-type"), await call.body(self.limits))
        run = self.start(job, await self.admission.acquire())
        if job.stream:
            return Events(self._events(run), on_close=run.end)
        return await self._complete(call, run)

    async def models(self, call: Call) -> Reply:
        return self.model_list(call.header("authorization"))

    async def _complete(self, call: Call, run: Generation) -> Reply:
        watcher = asyncio.ensure_future(_cancel_on_disconnect(call, run.job))
        tokens: AsyncIterator[int] | None = None
        try:
            tokens = self.generate(run.job)
            async for token in tokens:
                run.add(token)
            reply = run.body()
            run.outcome = "cancelled" if watcher.done() else "ok"
            return reply
        finally:
            watcher.cancel()
            await _aclose(run.job, tokens)
            run.end()

    async def _events(self, run: Generation) -> AsyncGenerator[bytes, None]:
        tokens: AsyncIterator[int] | None = None
        try:
            tokens = self.generate(run.job)
            async for token in tokens:
                yield run.chunk(token)
            yield run.tail()
            run.outcome = "ok"
        except Exception as exc:
            yield run.failed(exc)
        finally:  # also on a disconnect (the adapter closes this generator)
            await _aclose(run.job, tokens)
            run.end()


class ThreadFlow(_ModelFlow):
    """The flow on the request's own thread; `generate(job)` is a plain iterator. Same options as
    `AsyncFlow`; a stream whose client left ends at the next failed write (the adapter closes
    the generator)."""

    def __init__(self, cfg: ServeConfig, model: ModelInfo, generate: SyncTokenStream,
                 stats: Stats, *, concurrency: int, counts_tokens: bool = False,
                 drain: Drain | None = None) -> None:
        super().__init__(cfg, model, stats, counts_tokens, drain, None)
        self.generate = generate
        self.admission = ThreadAdmission(cfg.shared.concurrency(concurrency),
                                         cfg.shared.max_queue, stats)
        self.drain.on_begin(self._on_drain)

    def _on_drain(self, cutoff_s: float) -> None:
        timer = threading.Timer(cutoff_s, self.admission.refuse_waiting,
                                args=(self.drain.refusal(),))
        timer.daemon = True
        timer.start()

    def respond(self, call: SyncCall, kind: Kind) -> Reply | Events[Iterator[bytes]]:
        self.authorize(call.header("authorization"))
        self.check_serving()
        job = self.job(kind, call.header("content-type"), call.body(self.limits))
        run = self.start(job, self.admission.acquire())
        if job.stream:
            return Events(self._events(run), on_close=run.end)
        return self._complete(run)

    def models(self, call: SyncCall) -> Reply:
        return self.model_list(call.header("authorization"))

    def _complete(self, run: Generation) -> Reply:
        tokens: Iterator[int] | None = None
        try:
            tokens = self.generate(run.job)
            for token in tokens:
                run.add(token)
            reply = run.body()
            run.outcome = "ok"
            return reply
        finally:
            _close(run.job, tokens)
            run.end()

    def _events(self, run: Generation) -> Iterator[bytes]:
        tokens: Iterator[int] | None = None
        try:
            tokens = self.generate(run.job)
            for token in tokens:
                yield run.chunk(token)
            yield run.tail()
            run.outcome = "ok"
        except Exception as exc:
            yield run.failed(exc)
        finally:  # GeneratorExit lands here when a write to a departed client failed
            _close(run.job, tokens)
            run.end()


async def _cancel_on_disconnect(call: Call, job: Job) -> None:
    await call.disconnected()
    job.cancel.set()


async def _aclose(job: Job, tokens: AsyncIterator[int] | None) -> None:
    """Stop a generation left behind (a no-op after a normal end) and close its iterator."""
    job.cancel.set()
    if isinstance(tokens, AsyncGenerator):
        await tokens.aclose()


def _close(job: Job, tokens: Iterator[int] | None) -> None:
    job.cancel.set()
    close = getattr(tokens, "close", None)
    if close is not None:
        close()
