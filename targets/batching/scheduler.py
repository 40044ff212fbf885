"""Continuous (iteration-level) batching: one scheduler thread steps every running sequence at once.

    batcher = ContinuousBatcher(load_batch_model(load_engine("tiny"), max_batch=64))
    batcher.start()
    async for token in batcher.stream(prompt_ids, params, cancel):   # from any event loop
        ...
    batcher.stop()

The scheduler thread owns the model. Each iteration it admits waiting requests (up to
`max_batch` sequences at once), drops cancelled ones, and runs ONE forward pass that gives every
decoding sequence its next token and feeds joining sequences a chunk of their prompt (at most
`prefill_tokens` prompt tokens per step, so a long prompt is spread over several steps instead
of stalling everyone's decode; the decode rows come on top, so a burst of prompts is never split
further because many sequences are decoding). A sequence that finishes — EOS, `max_tokens`, the
model's `max_len` reached, or cancelled — leaves at once and frees its place for the next request.

Tokens go out once per step: the scheduler groups them by `Sink` and makes one `put` per sink, so
an event loop is woken once per step (`call_soon_threadsafe`), not once per token, and no text
work happens on the scheduler thread (detokenizing stays on the event loop side).

The model is any `BatchModel` (this module defines what the scheduler needs and imports no
model): `targets.batching.llama` for real models, `targets.batching.sim` for `sim:` specs;
`targets.batching.load.load_batch_model` picks one for a loaded engine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from targets.model.engine import GenParams

log = logging.getLogger("patternbench.target")
Item = int | BaseException | None  # a token, a failure, or None: the end of the sequence


class Sink(Protocol):
    """Where a step's outputs go. Called on the scheduler thread with `(key, item)` pairs in
    order, once per step for all of that step's items bound for this sink."""

    def put(self, items: list[tuple[Any, Item]]) -> None: ...


@dataclass(eq=False)
class Sequence:
    """One request inside the scheduler, compared and hashed by identity (models key their own
    per-sequence state by it). `cached`: tokens the model has consumed (prompt first; the model
    advances it in `step`); `last`: the latest output token, the input of its next decode step;
    `produced`: output tokens so far."""

    ids: list[int]
    params: GenParams
    cancel: threading.Event
    sink: Sink
    key: Any
    cached: int = 0
    last: int = -1
    produced: int = 0


class BatchModel(Protocol):
    """What the scheduler needs from a model.

    `max_batch`: the most sequences joined at once; `max_len`: tokens per sequence, prompt included;
    `eos`: the end-of-sequence token id. `join(seq)` before a sequence's first step, `leave(seq)`
    once it is done (the model drops whatever it keeps for it), `reset()` after a failed step
    (every sequence is gone at once). `step(decode, chunks)` feeds each decode sequence its
    `last` token and each `(seq, n)` chunk its next `n` prompt tokens, advances `seq.cached`, and
    returns the next token of each decode sequence, then of each chunk that completes its prompt.
    """

    max_batch: int
    max_len: int
    eos: int

    def join(self, seq: Sequence) -> None: ...
    def leave(self, seq: Sequence) -> None: ...
    def reset(self) -> None: ...
    def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]: ...


class BatcherStopped(RuntimeError):
    """The batcher stopped before this sequence finished."""


class BatcherDead(RuntimeError):
    """The scheduler thread died: no sequence can be served any more (`ContinuousBatcher.dead`
    says why)."""


class SequenceFailed(Exception):
    """Raised by `BatchModel.step` when one sequence alone cannot be stepped (its sampling
    failed): the step changed nothing for the others, so the scheduler fails `seq` with `cause`
    and runs the step again without it."""

    def __init__(self, seq: Sequence, cause: BaseException) -> None:
        super().__init__(f"sequence failed: {cause}")
        self.seq = seq
        self.cause = cause


class ContinuousBatcher:
    """The scheduler thread around a `BatchModel` (see the module doc). Thread-safe `submit`."""

    def __init__(self, model: BatchModel, prefill_tokens: int = 2048) -> None:
        self.model = model
        self.prefill_tokens = prefill_tokens
        self.inbox: collections.deque[Sequence] = collections.deque()
        self.decode: list[Sequence] = []
        self.prefill: list[Sequence] = []
        self.running = 0  # sequences joined to the model: the running batch size
        self.steps = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._sinks: dict[asyncio.AbstractEventLoop, _LoopSink] = {}
        self.dead: str | None = None  # why the scheduler thread died; None while it runs

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the current step; unfinished sequences end with `BatcherStopped`."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    # -- submitting -----------------------------------------------------------------------------

    def submit(self, ids: list[int], params: GenParams, cancel: threading.Event, sink: Sink,
               key: Any) -> None:
        """Queue a request; its tokens arrive as `sink.put([(key, token), ...])`, then `None`."""
        if not ids:
            raise ValueError("a prompt needs at least one token")
        if self.dead is not None:
            raise BatcherDead(f"the engine loop died: {self.dead}")
        self.inbox.append(Sequence(list(ids), params, cancel, sink, key))
        self._wake.set()

    async def stream(self, ids: list[int], params: GenParams,
                     cancel: threading.Event | None = None) -> AsyncGenerator[int, None]:
        """Tokens of one request on the running event loop. Closing the iterator early (`aclose`,
        `contextlib.aclosing`) cancels the request; so does setting `cancel`."""
        loop = asyncio.get_running_loop()
        sink = self._sinks.get(loop) or self._sinks.setdefault(loop, _LoopSink(loop))
        out: asyncio.Queue[Item] = asyncio.Queue()
        cancel = cancel if cancel is not None else threading.Event()
        self.submit(ids, params, cancel, sink, out)
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # a no-op when finished; otherwise it leaves at the next step

    def generate(self, ids: list[int], params: GenParams,
                 cancel: threading.Event | None = None) -> Iterator[int]:
        """Blocking tokens of one request, for threads and tests (the ModelEngine shape)."""
        out: queue.SimpleQueue[Item] = queue.SimpleQueue()
        cancel = cancel if cancel is not None else threading.Event()
        self.submit(ids, params, cancel, QUEUE_SINK, out)
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()

    # -- the scheduler thread -------------------------------------------------------------------

    def _run(self) -> None:
        """The scheduler thread. If anything escapes the loop it does not die silently: `dead`
        says why, and every waiting and running sequence (and every later submit) fails."""
        try:
            self._loop()
        except BaseException as exc:
            self.dead = f"{type(exc).__name__}: {exc}"
            log.exception("the engine loop died")
            self._abandon(BatcherDead(f"the engine loop died: {self.dead}"))
            return
        self._fail_all(BatcherStopped("the batcher stopped"))
        self._abandon(BatcherStopped("the batcher stopped"))

    def _abandon(self, exc: BaseException) -> None:
        """End every running and queued sequence with `exc`, touching the model no more."""
        out: dict[Sink, list[tuple[Any, Item]]] = {}
        for seq in (*self.decode, *self.prefill):
            out.setdefault(seq.sink, []).append((seq.key, exc))
        self.decode, self.prefill, self.running = [], [], 0
        while self.inbox:
            seq = self.inbox.popleft()
            out.setdefault(seq.sink, []).append((seq.key, exc))
        for sink, items in out.items():
            sink.put(items)

    def _loop(self) -> None:
        while True:
            self._admit()
            self._drop_cancelled()
            if not self.decode and not self.prefill:
                if self._stop:
                    break
                self._wake.wait()
                self._wake.clear()
                continue
            if self._stop:
                break
            chunks = self._plan()
            try:
                tokens = self.model.step(self.decode, chunks)
                self.steps += 1
                self._deliver(tokens, chunks)
            except SequenceFailed as failed:  # one sequence's failure: the others step again
                self._fail_one(failed.seq, failed.cause)
            except Exception as exc:  # the batch is lost; every sequence in it learns why
                self._fail_all(exc)

    def _admit(self) -> None:
        while self.inbox and len(self.decode) + len(self.prefill) < self.model.max_batch:
            seq = self.inbox.popleft()
            if seq.cancel.is_set():
                seq.sink.put([(seq.key, None)])
                continue
            if len(seq.ids) >= self.model.max_len:
                seq.sink.put([(seq.key, ValueError(
                    f"prompt of {len(seq.ids)} tokens does not fit the model's "
                    f"{self.model.max_len}-token slots"))])
                continue
            try:
                self.model.join(seq)
            except Exception as exc:  # e.g. its generator cannot be seeded: it alone fails
                seq.sink.put([(seq.key, exc)])
                continue
            self.prefill.append(seq)
        self.running = len(self.decode) + len(self.prefill)

    def _plan(self) -> list[tuple[Sequence, int]]:
        """Prompt chunks for this step, FIFO, at most `prefill_tokens` prompt tokens in all."""
        budget = self.prefill_tokens
        chunks: list[tuple[Sequence, int]] = []
        for seq in self.prefill:
            if budget <= 0:
                break
            n = min(len(seq.ids) - seq.cached, budget)
            chunks.append((seq, n))
            budget -= n
        return chunks

    def _finish(self, seq: Sequence, out: dict[Sink, list[tuple[Any, Item]]],
                item: Item = None) -> None:
        self.model.leave(seq)
        out.setdefault(seq.sink, []).append((seq.key, item))

    def _emit(self, seq: Sequence, token: int, out: dict[Sink, list[tuple[Any, Item]]]) -> bool:
        """Send `token`; return True when `seq` is done (and has been finished)."""
        seq.last = token
        seq.produced += 1
        out.setdefault(seq.sink, []).append((seq.key, token))
        p = seq.params
        if ((token == self.model.eos and not p.ignore_eos) or seq.produced >= p.max_tokens
                or seq.cached >= self.model.max_len or seq.cancel.is_set()):
            self._finish(seq, out)
            return True
        return False

    def _deliver(self, tokens: list[int], chunks: list[tuple[Sequence, int]]) -> None:
        out: dict[Sink, list[tuple[Any, Item]]] = {}
        done = [i for i, seq in enumerate(self.decode) if self._emit(seq, tokens[i], out)]
        for i in reversed(done):  # swap-remove: one sequence per removal changes place
            last = self.decode.pop()
            if i < len(self.decode):
                self.decode[i] = last
        k = len(self.decode) + len(done)
        for seq, _ in chunks:
            if seq.cached == len(seq.ids):
                self.prefill.remove(seq)
                if not self._emit(seq, tokens[k], out):
                    self.decode.append(seq)
                k += 1
        self.running = len(self.decode) + len(self.prefill)
        for sink, items in out.items():
            sink.put(items)

    def _drop_cancelled(self) -> None:
        gone = [s for s in (*self.decode, *self.prefill) if s.cancel.is_set()]
        if not gone:
            return
        out: dict[Sink, list[tuple[Any, Item]]] = {}
        for seq in gone:
            if seq in self.prefill:
                self.prefill.remove(seq)
            else:
                i = self.decode.index(seq)
                self.decode[i] = self.decode[-1]
                self.decode.pop()
            self._finish(seq, out)
        self.running = len(self.decode) + len(self.prefill)
        for sink, items in out.items():
            sink.put(items)

    def _fail_one(self, seq: Sequence, exc: BaseException) -> None:
        if seq in self.prefill:
            self.prefill.remove(seq)
        elif seq in self.decode:
            self.decode.remove(seq)
        self.model.leave(seq)
        self.running = len(self.decode) + len(self.prefill)
        seq.sink.put([(seq.key, exc)])

    def _fail_all(self, exc: BaseException) -> None:
        out: dict[Sink, list[tuple[Any, Item]]] = {}
        for seq in (*self.decode, *self.prefill):
            out.setdefault(seq.sink, []).append((seq.key, exc))
        self.decode, self.prefill, self.running = [], [], 0
        try:
            self.model.reset()
        finally:  # the sequences learn why even when the reset fails (and the loop dies)
            for sink, items in out.items():
                sink.put(items)


class _LoopSink:
    """Delivers a step's items to asyncio queues on one event loop, with one wake-up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def put(self, items: list[tuple[Any, Item]]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is reading any more
            self.loop.call_soon_threadsafe(_dispatch, items)


def _dispatch(items: list[tuple[Any, Item]]) -> None:
    for out, item in items:
        out.put_nowait(item)


class _QueueSink:
    def put(self, items: list[tuple[Any, Item]]) -> None:
        _dispatch(items)


QUEUE_SINK: Sink = _QueueSink()

