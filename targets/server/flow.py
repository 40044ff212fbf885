"""The request flow every local target runs, written once for every web framework and pattern:

    auth → serving check (drain, engine down) → body (size limit) → prepare → admission
         → run → outcome

The flow owns every step. What differs between patterns is a per-request *strategy*
(`Strategy`): its `prepare` turns the request into work before it takes a slot, and that work's
`run` answers it once admitted. Two strategies exist:

- run a model job (`targets.server.generation`: `AsyncJobs`, `ThreadJobs`): `prepare` parses and
  validates the body into a `Job`; `run` completes it or streams its tokens;
- forward upstream (`targets.fastapi_proxy`: `Forward`): `prepare` parses nothing; `run` sends
  the bytes on through a pooled connection and relays the upstream's answer untouched.

A request arrives as a `Call` (a header, the body within the limits, a way to notice that the
client left) and leaves as a `Reply` (a whole body) or an `Events` (an SSE stream), all in
`targets.server.exchange`. The framework adapters only translate those and add what never reaches
the strategy (`/health`, `/metrics`, error rendering, the server's drain): `targets.server.asgi`
(FastAPI on uvicorn) and `targets.server.wsgi` (Flask on gunicorn).

Every request that took an admission slot ends exactly once as an `Outcome`: its slot is freed
and `patternbench_requests_total{outcome}` counts how it ended (`ok`, `error`, `cancelled`, or a
gateway's `upstream_error` / `upstream_status`; `rejected` is counted by admission). The flow
ends it when `run` returns a whole reply or raises, and when the adapter closes a stream (a
stream's last step may end it sooner). At the drain's cutoff the flow refuses what still waits:
its admission queue and whatever waits inside the strategy (a gateway's pool queue).

`AsyncFlow` runs on an asyncio event loop, `ThreadFlow` on the request's own thread; they share
every step, only how they wait differs (`await` or blocking):

    flow = AsyncFlow(cfg, AsyncJobs(cfg, engine, generate, stats), stats, concurrency=4)
    reply = await flow.respond(call, "completions")   # Reply | Events; raises APIError
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, Literal, Protocol, TypeVar

from targets.server.admission import AsyncAdmission, Slot, ThreadAdmission
from targets.server.api import APIError, check_api_key
from targets.server.config import ServeConfig
from targets.server.drain import Drain
from targets.server.exchange import AsyncReply, B, Call, Events, Reply, SyncCall, ThreadReply
from targets.server.stats import Stats

Route = Literal["completions", "chat", "models"]
"""What a request asks for: `POST /v1/completions`, `POST /v1/chat/completions` or
`GET /v1/models`."""

Down = Callable[[], "str | None"]
"""Why the pattern's engine cannot serve (its loop died), or None while it can: `/health` answers
503 with the reason and every request fails fast with it."""

W = TypeVar("W")
W_co = TypeVar("W_co", covariant=True)


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


class AsyncWork(Protocol):
    """One request its strategy prepared, answered on the event loop."""

    def begin(self, slot: Slot) -> Outcome:
        """The request's one `Outcome`, holding `slot`; `run` sets its `outcome` as it goes."""
        ...

    async def run(self, call: Call) -> AsyncReply:
        """The answer (`APIError` before any byte is sent; inside the stream after)."""
        ...


class ThreadWork(Protocol):
    """One request its strategy prepared, answered on the request's own thread."""

    def begin(self, slot: Slot) -> Outcome: ...

    def run(self, call: SyncCall) -> ThreadReply: ...


class Strategy(Protocol[W_co]):
    """The per-request part of a flow: what a checked request becomes, and what answers it."""

    def listing(self) -> Reply | None:
        """`/v1/models` answered at once (a model target lists its model: no slot is taken), or
        None: the route is prepared and admitted like any other (a gateway forwards it)."""
        ...

    def prepare(self, route: Route, content_type: str | None, body: bytes) -> W_co:
        """The request's work, before it takes a slot (raise `APIError` 400 / 404 / 413 / 415 for
        what the strategy refuses to run)."""
        ...

    def refuse_waiting(self, error: APIError) -> None:
        """The drain's cutoff: answer `error` to requests waiting inside the strategy."""
        ...


class _Flow(Generic[W]):
    """The steps both flows share: auth and the serving check. `drain` (default: one of `cfg`'s
    drain timeout) is begun by the adapter on SIGTERM; `down` says when the engine died."""

    def __init__(self, cfg: ServeConfig, strategy: Strategy[W], drain: Drain | None,
                 down: Down | None) -> None:
        self.api_key = cfg.api_key
        self.limits = cfg.limits
        self.strategy = strategy
        self.drain = drain or Drain(cfg.shared.drain_timeout_s)
        self.down = down

    def listed(self, call: Call | SyncCall, route: Route) -> Reply | None:
        """Auth; then the strategy's own `/v1/models` answer, if it has one."""
        check_api_key(call.header("authorization"), self.api_key)
        return self.strategy.listing() if route == "models" else None

    def check_serving(self) -> None:
        """503 while draining or with the engine down: fail fast, in the API's shape."""
        if self.drain.draining:
            raise self.drain.refusal()
        reason = self.down() if self.down is not None else None
        if reason is not None:
            raise APIError(503, f"the engine is down: {reason}", type="server_error",
                           code="engine_down")

    def refuse_waiting(self, admission: AsyncAdmission | ThreadAdmission) -> None:
        error = self.drain.refusal()
        admission.refuse_waiting(error)
        self.strategy.refuse_waiting(error)


class AsyncFlow(_Flow[AsyncWork]):
    """The flow on an asyncio event loop.

    `concurrency` is the pattern's natural parallelism (the default of the shared option
    `max_concurrency`): that many requests run at once, `max_queue` more wait, the rest get 503.
    """

    def __init__(self, cfg: ServeConfig, strategy: Strategy[AsyncWork], stats: Stats, *,
                 concurrency: int, drain: Drain | None = None, down: Down | None = None) -> None:
        super().__init__(cfg, strategy, drain, down)
        self.admission = AsyncAdmission(cfg.shared.concurrency(concurrency),
                                        cfg.shared.max_queue, stats)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.drain.on_begin(self._on_drain)

    def _on_drain(self, cutoff_s: float) -> None:
        """At the drain's cutoff, refuse what waits (scheduled from the signal handler)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.call_later, cutoff_s, self.refuse_waiting,
                                      self.admission)

    async def respond(self, call: Call, route: Route) -> AsyncReply:
        self._loop = self._loop or asyncio.get_running_loop()
        if (listing := self.listed(call, route)) is not None:
            return listing
        self.check_serving()
        body = b"" if route == "models" else await call.body(self.limits)
        work = self.strategy.prepare(route, call.header("content-type"), body)
        outcome = work.begin(await self.admission.acquire())
        try:
            reply = await work.run(call)
        except BaseException:
            outcome.end()
            raise
        return _ended_with(reply, outcome)


class ThreadFlow(_Flow[ThreadWork]):
    """The flow on the request's own thread. Same options as `AsyncFlow`; a stream whose client
    left ends at the next failed write (the adapter closes the generator)."""

    def __init__(self, cfg: ServeConfig, strategy: Strategy[ThreadWork], stats: Stats, *,
                 concurrency: int, drain: Drain | None = None) -> None:
        super().__init__(cfg, strategy, drain, None)
        self.admission = ThreadAdmission(cfg.shared.concurrency(concurrency),
                                         cfg.shared.max_queue, stats)
        self.drain.on_begin(self._on_drain)

    def _on_drain(self, cutoff_s: float) -> None:
        timer = threading.Timer(cutoff_s, self.refuse_waiting, args=(self.admission,))
        timer.daemon = True
        timer.start()

    def respond(self, call: SyncCall, route: Route) -> ThreadReply:
        if (listing := self.listed(call, route)) is not None:
            return listing
        self.check_serving()
        body = b"" if route == "models" else call.body(self.limits)
        work = self.strategy.prepare(route, call.header("content-type"), body)
        outcome = work.begin(self.admission.acquire())
        try:
            reply = work.run(call)
        except BaseException:
            outcome.end()
            raise
        return _ended_with(reply, outcome)


def _ended_with(reply: Reply | Events[B], outcome: Outcome) -> Reply | Events[B]:
    """End `outcome` now for a whole reply; for a stream, once the adapter closes it."""
    if not isinstance(reply, Events):
        outcome.end()
        return reply
    close = reply.on_close

    def on_close() -> None:
        try:
            close()
        finally:
            outcome.end()

    return Events(reply.chunks, on_close=on_close)
