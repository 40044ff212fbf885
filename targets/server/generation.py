"""Run a model job: the request flow's strategy for every target that holds a model.

`AsyncJobs` and `ThreadJobs` give the flow (`targets.server.flow`) its two per-request steps:
`prepare` parses and validates the body into a `Job` (400 / 404 / 413 / 415 before it takes a
slot), and the prepared run completes the job or streams its tokens, produced by the pattern's
`generate(job)` (`targets.server.job`). `/v1/models` is answered from the model at once.

A client that leaves cancels its generation (`job.cancel` is set and the iterator closed); so
does a stop sequence the output reached (`job.stopped`).
`counts_tokens`: the pattern's producer (a worker thread or process) counts tokens in
`patternbench_generated_tokens` itself, so tokens a departed client never read are counted too;
otherwise they are counted here.

    flow = AsyncFlow(cfg, AsyncJobs(cfg, engine, generate, stats), stats, concurrency=4)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from targets.server.admission import Slot
from targets.server.api import (
    APIError,
    check_content_type,
    check_model,
    error_event,
    model_list,
    parse_request,
)
from targets.server.config import ServeConfig
from targets.server.exchange import AsyncReply, Call, Events, Reply, SyncCall, ThreadReply
from targets.server.flow import Outcome, Route
from targets.server.job import Job, ModelInfo, SyncTokenStream, TokenStream
from targets.server.stats import Stats

log = logging.getLogger("patternbench.target")


class _Jobs:
    """What both strategies share: validation against the limits and the served model, and
    `/v1/models`. A request names the served model (its name, or the model spec the target was
    started with) or none."""

    def __init__(self, cfg: ServeConfig, model: ModelInfo, stats: Stats,
                 counts_tokens: bool) -> None:
        self.limits = cfg.limits
        self.model = model
        self.served = (model.name, cfg.model)
        self.stats = stats
        self.count = not counts_tokens
        self.started = int(time.time())

    def listing(self) -> Reply:
        return Reply.json(model_list(self.model.name, self.model.max_context, self.started))

    def job(self, route: Route, content_type: str | None, body: bytes) -> Job:
        """Parse and validate (raises `APIError` 400 / 404 / 413 / 415)."""
        assert route != "models", "listing() answers it"
        check_content_type(content_type)
        request = parse_request(body, route, self.limits)
        check_model(request.model, self.served)
        return Job.create(route, request, self.model, self.limits)

    def refuse_waiting(self, error: APIError) -> None:
        """Nothing waits here: a job waits for its slot in the flow's admission queue."""


class _Run:
    """One admitted job: its tokens become SSE chunks or a final body."""

    def __init__(self, jobs: _Jobs, job: Job) -> None:
        self.jobs = jobs
        self.job = job
        self.outcome: Outcome | None = None

    def begin(self, slot: Slot) -> Outcome:
        """A streamed job that stops early was cancelled; a whole one that raises, an error."""
        self.outcome = Outcome(slot, self.jobs.stats, "cancelled" if self.job.stream else "error")
        return self.outcome

    def ends_as(self, outcome: str) -> None:
        assert self.outcome is not None, "begin() comes first"
        self.outcome.outcome = outcome

    def end(self) -> None:
        """A stream's last step: free the slot as soon as its generation is closed."""
        if self.outcome is not None:
            self.outcome.end()

    def add(self, token: int) -> None:
        if self.jobs.count:
            self.jobs.stats.tokens.inc()
        self.job.add(token)

    def chunk(self, token: int) -> bytes:
        if self.jobs.count:
            self.jobs.stats.tokens.inc()
        return self.job.on_token(token)

    def tail(self) -> bytes:
        return self.job.tail(self.jobs.model.eos_token_id)

    def body(self) -> Reply:
        return Reply.json(self.job.response(self.jobs.model.eos_token_id))

    def failed(self, exc: Exception) -> bytes:
        """After a mid-stream failure (headers are sent): the error inside the stream."""
        log.exception("generation failed mid-stream")
        self.ends_as("error")
        if isinstance(exc, APIError):
            return error_event(exc)
        return error_event(APIError(500, f"generation failed: {exc}", type="server_error"))


class AsyncJobs(_Jobs):
    """The strategy on an asyncio event loop; `generate(job)` is an async iterator."""

    def __init__(self, cfg: ServeConfig, model: ModelInfo, generate: TokenStream, stats: Stats,
                 *, counts_tokens: bool = False) -> None:
        super().__init__(cfg, model, stats, counts_tokens)
        self.generate = generate

    def prepare(self, route: Route, content_type: str | None, body: bytes) -> AsyncRun:
        return AsyncRun(self, self.job(route, content_type, body))


class AsyncRun(_Run):
    jobs: AsyncJobs

    async def run(self, call: Call) -> AsyncReply:
        if self.job.stream:
            return Events(self._events(), on_close=_nothing)
        watcher = asyncio.ensure_future(_cancel_on_disconnect(call, self.job))
        tokens: AsyncIterator[int] | None = None
        try:
            tokens = self.jobs.generate(self.job)
            async for token in tokens:
                self.add(token)
                if self.job.stopped:
                    break
            reply = self.body()
            self.ends_as("cancelled" if watcher.done() else "ok")
            return reply
        finally:
            watcher.cancel()
            await _aclose(self.job, tokens)

    async def _events(self) -> AsyncGenerator[bytes, None]:
        tokens: AsyncIterator[int] | None = None
        try:
            tokens = self.jobs.generate(self.job)
            async for token in tokens:
                yield self.chunk(token)
                if self.job.stopped:
                    break
            yield self.tail()
            self.ends_as("ok")
        except Exception as exc:
            yield self.failed(exc)
        finally:  # also on a disconnect (the adapter closes this generator)
            await _aclose(self.job, tokens)
            self.end()


class ThreadJobs(_Jobs):
    """The strategy on the request's own thread; `generate(job)` is a plain iterator."""

    def __init__(self, cfg: ServeConfig, model: ModelInfo, generate: SyncTokenStream,
                 stats: Stats, *, counts_tokens: bool = False) -> None:
        super().__init__(cfg, model, stats, counts_tokens)
        self.generate = generate

    def prepare(self, route: Route, content_type: str | None, body: bytes) -> ThreadRun:
        return ThreadRun(self, self.job(route, content_type, body))


class ThreadRun(_Run):
    jobs: ThreadJobs

    def run(self, call: SyncCall) -> ThreadReply:
        if self.job.stream:
            return Events(self._events(), on_close=_nothing)
        tokens: Iterator[int] | None = None
        try:
            tokens = self.jobs.generate(self.job)
            for token in tokens:
                self.add(token)
                if self.job.stopped:
                    break
            reply = self.body()
            self.ends_as("ok")
            return reply
        finally:
            _close(self.job, tokens)

    def _events(self) -> Iterator[bytes]:
        tokens: Iterator[int] | None = None
        try:
            tokens = self.jobs.generate(self.job)
            for token in tokens:
                yield self.chunk(token)
                if self.job.stopped:
                    break
            yield self.tail()
            self.ends_as("ok")
        except Exception as exc:
            yield self.failed(exc)
        finally:  # GeneratorExit lands here when a write to a departed client failed
            _close(self.job, tokens)
            self.end()


def _nothing() -> None:
    """A job's stream holds nothing beyond its generator (which the adapter closes)."""


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
