"""One model request's job, and what a pattern writes against to produce its tokens.

`Job` is one validated request: its prompt ids and parameters, and its output as it grows, turned
into SSE chunks or a final body. `ModelInfo` is what validating and formatting a request needs
from a model (`ServedModel` holds it as plain values). A pattern writes only how tokens are
produced for a `Job`:

- `TokenStream` (asyncio): an async iterator of token ids; it must stop soon after `job.cancel`
  is set and release what it holds when closed early (`aclose()`);
- `SyncTokenStream` (threads): a plain iterator, produced on the request's own thread.

`targets.server.generation` runs it for the request flow.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from targets.model.engine import GenParams, Tokenizer
from targets.server.api import (
    ChatRequest,
    CompletionRequest,
    Formatter,
    Kind,
    Limits,
    finish_reason,
    prompt_ids,
)
from targets.server.text import Detokenizer, StopText


class ModelInfo(Protocol):
    """What validating and formatting a request needs from a model, without its weights.

    Every `ModelEngine` satisfies it; a process-pool front end builds one from the tokenizer and
    what a replica reports.
    """

    @property
    def name(self) -> str: ...
    @property
    def max_context(self) -> int: ...
    @property
    def eos_token_id(self) -> int: ...
    @property
    def tokenizer(self) -> Tokenizer: ...


@dataclass(frozen=True)
class ServedModel:
    """A `ModelInfo` as plain values, for an API layer that does not hold the engine: a process
    pool's front end (the rest as a replica reported it), or a batcher serving the model with its
    context cut to the slot length."""

    name: str
    max_context: int
    eos_token_id: int
    tokenizer: Tokenizer


@dataclass
class Job:
    """One validated request: its prompt ids, parameters and output so far."""

    kind: Kind
    request: CompletionRequest | ChatRequest
    ids: list[int]
    params: GenParams
    formatter: Formatter
    detok: Detokenizer
    stop: StopText
    tokens: list[int] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(cls, kind: Kind, request: CompletionRequest | ChatRequest, engine: ModelInfo,
               limits: Limits) -> Job:
        """Check the prompt against `limits` and the model's context (raises `APIError`)."""
        ids, params = prompt_ids(request, engine.tokenizer, engine.max_context, limits)
        options = request.stream_options
        fmt = Formatter(kind, request.model or engine.name,
                        include_usage=bool(options and options.include_usage),
                        continuous_usage=bool(options and options.continuous_usage_stats))
        return cls(kind, request, ids, params, fmt, Detokenizer(engine.tokenizer),
                   StopText(request.stop_sequences()))

    @property
    def stream(self) -> bool:
        return self.request.stream

    @property
    def stopped(self) -> bool:
        """A stop sequence ended the output: the generation is to be closed."""
        return self.stop.hit

    def add(self, token: int) -> str:
        """Record a token; return its text piece ('' while a UTF-8 character is incomplete or
        the text may begin a stop sequence)."""
        self.tokens.append(token)
        piece = self.stop.push(self.detok.push(token))
        self.text.append(piece)
        return piece

    def on_token(self, token: int) -> bytes:
        """Record a token; return its SSE chunk (one chunk per token, even if its text is '')."""
        piece = self.add(token)
        counts = (len(self.ids), len(self.tokens)) if self.formatter.continuous_usage else None
        return self.formatter.chunk(piece, counts=counts)

    def finish(self, eos: int) -> str:
        return finish_reason(self.params, self.tokens, eos, self.stopped)

    def rest(self) -> str:
        """The text still held at the end, by the detokenizer or as a possible stop sequence
        that did not come (recorded like a token's piece)."""
        piece = self.stop.push(self.detok.flush()) + self.stop.flush()
        self.text.append(piece)
        return piece

    def tail(self, eos: int) -> bytes:
        """The held-back text's chunk (if any), the closing chunk, usage, [DONE]."""
        rest = self.rest()
        head = self.formatter.chunk(rest) if rest else b""
        return head + self.formatter.tail(self.finish(eos), len(self.ids), len(self.tokens))

    def response(self, eos: int) -> dict[str, Any]:
        self.rest()
        return self.formatter.response("".join(self.text), self.finish(eos), len(self.ids),
                                       len(self.tokens))


TokenStream = Callable[[Job], AsyncIterator[int]]
"""An asyncio pattern's output token ids for one job: it stops soon after `job.cancel` is set and
releases what it holds when closed early (`aclose()`)."""

SyncTokenStream = Callable[[Job], Iterator[int]]
"""A threaded pattern's output token ids for one job, produced on the request's thread."""
