"""echo — a zero-work target: streams N tokens with no delay and no model.

The pattern it shows is none at all: it is the yardstick `patternbench calibrate` drives each load
driver against, so whatever latency and request-rate ceiling a driver reaches here is the
harness's own overhead, not the serving pattern's.

It is a raw ASGI app on the real uvicorn server (uvloop + httptools when installed) rather than a
FastAPI app: a no-model target has nothing to share with the model layer, and FastAPI routing and
validation would add their cost to what is meant to be the floor. It still speaks the same API as
every target: `POST /v1/completions` and `/v1/chat/completions` (streaming with one SSE chunk per
token, an optional usage chunk and `[DONE]`, or one JSON body), `GET /health`, `GET /metrics`.

Options: `tokens` (int, default 0 = the request's `max_tokens`, capped by `--max-tokens-cap`).
The `model` argument is ignored: no model is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from targets.server.api import sse
from targets.server.config import ServeConfig, nonneg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]
_JSON_HEADERS = [(b"content-type", b"application/json")]
# OpenAI's `object` of a whole answer and of a stream chunk, as `targets.server.api` names them.
OBJECT = {"completions": "text_completion", "chat": "chat.completion"}
CHUNK_OBJECT = {"completions": "text_completion", "chat": "chat.completion.chunk"}


class EchoApp:
    """ASGI app answering every completion with `tokens` (or `max_tokens`) copies of one token."""

    def __init__(self, fixed_tokens: int, cap: int) -> None:
        self.fixed_tokens = fixed_tokens
        self.cap = cap
        self.requests = 0
        self.tokens = 0
        self.chunks = {kind: self._chunk(kind) for kind in ("completions", "chat")}

    @staticmethod
    def _chunk(kind: str, text: str = " echo", finish: str | None = None) -> bytes:
        """One stream chunk: a completion's `text`, or a chat reply's `delta`."""
        choice: dict[str, Any] = ({"index": 0, "text": text} if kind == "completions" else
                                  {"index": 0, "delta": {"content": text}})
        choice |= {"logprobs": None, "finish_reason": finish}
        return sse({"id": "echo", "object": CHUNK_OBJECT[kind], "created": 0, "model": "echo",
                    "choices": [choice]})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # lifespan.startup: nothing to load
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/health":
            await self._reply(send, 200, b'{"status":"ok"}')
        elif method == "GET" and path == "/metrics":
            text = (f"patternbench_echo_requests_total {self.requests}\n"
                    f"patternbench_generated_tokens_total {self.tokens}\n")
            await self._reply(send, 200, text.encode(), [(b"content-type", b"text/plain")])
        elif method == "POST" and path in ("/v1/completions", "/v1/chat/completions"):
            kind = "completions" if path == "/v1/completions" else "chat"
            await self._complete(kind, await _body(receive), send)
        else:
            await self._reply(send, 404, _error(f"no route {method} {path}", "not_found"))

    async def _complete(self, kind: str, raw: bytes, send: Send) -> None:
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("body must be a JSON object")
            n = self.fixed_tokens or int(req.get("max_tokens") or 16)
        except (ValueError, TypeError) as exc:
            await self._reply(send, 400, _error(f"invalid request: {exc}", "invalid_request"))
            return
        if n < 1 or n > self.cap:
            await self._reply(send, 400, _error(f"max_tokens must be 1..{self.cap}",
                                                "invalid_request"))
            return
        self.requests += 1
        self.tokens += n
        prompt_n = len(str(req.get("prompt", "")).split())
        usage = {"prompt_tokens": prompt_n, "completion_tokens": n, "total_tokens": prompt_n + n}
        if not req.get("stream"):
            text = " echo" * n
            choice: dict[str, Any] = ({"index": 0, "text": text, "finish_reason": "length"}
                                      if kind == "completions" else
                                      {"index": 0, "finish_reason": "length",
                                       "message": {"role": "assistant", "content": text}})
            body = {"id": "echo", "object": OBJECT[kind], "created": 0, "model": "echo",
                    "choices": [choice], "usage": usage}
            await self._reply(send, 200, json.dumps(body).encode())
            return
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        chunk = self.chunks[kind]
        for _ in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        tail = self._chunk(kind, "", finish="length")
        opts = req.get("stream_options") or {}
        if isinstance(opts, dict) and opts.get("include_usage"):
            tail += sse({"id": "echo", "object": CHUNK_OBJECT[kind], "created": 0,
                         "model": "echo", "choices": [], "usage": usage})
        await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n",
                    "more_body": False})

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": headers or _JSON_HEADERS})
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "invalid_request_error",
                                 "param": None, "code": code}}).encode()


@dataclass(frozen=True)
class EchoOptions:
    tokens: int = nonneg(0)  # tokens per answer; 0: the request's max_tokens


def create_app(cfg: ServeConfig) -> EchoApp:
    return EchoApp(cfg.pattern_options(EchoOptions).tokens, cfg.limits.max_tokens_cap)


def serve(cfg: ServeConfig) -> None:
    import uvicorn

    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=int(cfg.shared.drain_timeout_s))
