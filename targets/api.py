"""The OpenAI-compatible API every target speaks, independent of the web framework.

Parsing and validation (`parse_request`), prompt → token ids with limits (`prompt_ids`),
response and SSE chunk shapes (`Formatter`), incremental detokenization (`Detokenizer`) and
OpenAI-shaped errors (`APIError`). Flask and FastAPI targets both call these, so the wire format
is written once.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from targets.model.engine import GenParams, Tokenizer

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DONE = b"data: [DONE]\n\n"
Kind = Literal["completions", "chat"]


class APIError(Exception):
    """An error the client caused or must handle, rendered as OpenAI's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


def check_api_key(authorization: str | None, api_key: str | None) -> None:
    """Raise a 401 unless `api_key` is None or `authorization` is `Bearer <api_key>`."""
    if api_key is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                               api_key.encode()):
        raise APIError(401, "missing or incorrect API key: send 'Authorization: Bearer <key>'",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def error_event(exc: APIError) -> bytes:
    """An error reported inside an SSE stream whose 200 headers are already sent, then [DONE]."""
    return sse(exc.body()) + SSE_DONE


@dataclass(frozen=True)
class Limits:
    """Per-request limits a target enforces before touching the model."""

    max_tokens_cap: int = 4096
    max_body_bytes: int = 1 << 20


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = None
    ignore_eos: bool = False
    n: int = Field(default=1, ge=1, le=1)
    stream_options: StreamOptions | None = None


class CompletionRequest(_Common):
    prompt: str | list[int] | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


def parse_request(raw: bytes, kind: Kind, limits: Limits) -> CompletionRequest | ChatRequest:
    """Validate a request body; raise `APIError` (400/413) for anything a client got wrong."""
    if len(raw) > limits.max_body_bytes:
        raise APIError(413, f"request body is {len(raw)} bytes; the limit is "
                       f"{limits.max_body_bytes}", code="body_too_large")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise APIError(400, "request body must be a JSON object")
    model_cls: type[CompletionRequest | ChatRequest] = (
        CompletionRequest if kind == "completions" else ChatRequest
    )
    try:
        req = model_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise APIError(400, f"{param}: {first['msg']}" if param else first["msg"],
                       param=param) from exc
    if isinstance(req, CompletionRequest) and isinstance(req.prompt, list):
        if len(req.prompt) == 0:
            raise APIError(400, "prompt must not be empty", param="prompt")
        if any(isinstance(p, str) for p in req.prompt) and len(req.prompt) != 1:
            raise APIError(400, "only one prompt per request is supported", param="prompt")
    return req


def chat_prompt(messages: Sequence[ChatMessage]) -> str:
    """A plain role-prefixed transcript: the tiny model has no chat template."""
    lines = [f"{m.role}: {m.content}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def prompt_ids(
    req: CompletionRequest | ChatRequest, tokenizer: Tokenizer, max_context: int, limits: Limits
) -> tuple[list[int], GenParams]:
    """Token ids of the prompt and the generation parameters, after every limit check."""
    if isinstance(req, ChatRequest):
        ids = tokenizer.encode(chat_prompt(req.messages), add_special_tokens=False)
        max_tokens = req.max_completion_tokens or req.max_tokens or 16
    else:
        prompt = req.prompt
        if isinstance(prompt, str):
            ids = tokenizer.encode(prompt, add_special_tokens=False)
        elif prompt and isinstance(prompt[0], str):
            ids = tokenizer.encode(str(prompt[0]), add_special_tokens=False)
        else:
            ids = [int(t) for t in prompt]
        max_tokens = req.max_tokens or 16
    if not ids:
        raise APIError(400, "prompt must not be empty", param="prompt")
    vocab = len(tokenizer) if isinstance(tokenizer, Sized) else None
    if vocab is not None and any(t < 0 or t >= vocab for t in ids):
        raise APIError(400, f"prompt token ids must be in [0, {vocab})", param="prompt")
    if len(ids) >= max_context:
        raise APIError(413, f"prompt is {len(ids)} tokens; this model's context is "
                       f"{max_context} tokens", param="prompt", code="context_length_exceeded")
    if max_tokens > limits.max_tokens_cap:
        raise APIError(400, f"max_tokens {max_tokens} is over this server's cap of "
                       f"{limits.max_tokens_cap}", param="max_tokens")
    if len(ids) + max_tokens > max_context:
        raise APIError(400, f"prompt ({len(ids)}) + max_tokens ({max_tokens}) exceeds the "
                       f"context of {max_context} tokens", param="max_tokens",
                       code="context_length_exceeded")
    params = GenParams(max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p,
                       seed=req.seed, ignore_eos=req.ignore_eos)
    return ids, params


class Detokenizer:
    """Turns a stream of token ids into text pieces without splitting UTF-8 characters."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0  # characters of decode(ids[start:]) already sent
        self.start = 0

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids[self.start:], skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for the next token
        piece = text[self.emitted:]
        if len(self.ids) - self.start > 16:  # keep decode cost bounded on long outputs
            self.start = len(self.ids)
            self.emitted = 0
        else:
            self.emitted = len(text)
        return piece


def model_list(name: str, max_context: int, created: int) -> dict[str, Any]:
    """`GET /v1/models`: the one model this server serves, as OpenAI lists models (clients and
    benchmark tools ask it for the model name to send)."""
    return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                        "owned_by": "patternbench", "max_model_len": max_context}]}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class Formatter:
    """Builds response bodies and stream chunks for one request of either API kind."""

    def __init__(self, kind: Kind, model: str, include_usage: bool = False) -> None:
        self.kind = kind
        self.model = model
        self.include_usage = include_usage
        prefix = "cmpl" if kind == "completions" else "chatcmpl"
        self.id = f"{prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.object = "text_completion" if kind == "completions" else "chat.completion"

    def _choice(self, text: str, finish: str | None, delta: bool) -> dict[str, Any]:
        if self.kind == "completions":
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        key = "delta" if delta else "message"
        body: dict[str, Any] = {"content": text} if delta else {"role": "assistant",
                                                                  "content": text}
        return {"index": 0, key: body, "logprobs": None, "finish_reason": finish}

    def response(self, text: str, finish: str, prompt_n: int, output_n: int) -> dict[str, Any]:
        return {"id": self.id, "object": self.object, "created": self.created,
                "model": self.model, "choices": [self._choice(text, finish, delta=False)],
                "usage": usage(prompt_n, output_n)}

    def chunk(self, text: str, finish: str | None = None) -> bytes:
        obj = "text_completion" if self.kind == "completions" else "chat.completion.chunk"
        return sse({"id": self.id, "object": obj, "created": self.created, "model": self.model,
                    "choices": [self._choice(text, finish, delta=True)]})

    def tail(self, finish: str, prompt_n: int, output_n: int) -> bytes:
        """The closing chunk with finish_reason, the usage chunk when asked, then [DONE]."""
        out = self.chunk("", finish)
        if self.include_usage:
            obj = "text_completion" if self.kind == "completions" else "chat.completion.chunk"
            out += sse({"id": self.id, "object": obj, "created": self.created,
                        "model": self.model, "choices": [],
                        "usage": usage(prompt_n, output_n)})
        return out + SSE_DONE


def finish_reason(params: GenParams, tokens: Sequence[int], eos: int) -> str:
    if tokens and tokens[-1] == eos and not params.ignore_eos:
        return "stop"
    return "length"
