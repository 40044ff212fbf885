"""The OpenAI-compatible API every target speaks, independent of the web framework.

Parsing and validation (`parse_request`), prompt → token ids with limits (`prompt_ids`),
response and SSE chunk shapes (`Formatter`) and OpenAI-shaped errors (`APIError`); the output's
text as tokens arrive is `targets.server.text`. Flask and FastAPI targets both call these, so the
wire format is written once.
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
MAX_SEED = 2**63 - 1  # a seed must fit torch's generator (a signed 64-bit integer)
MAX_TEMPERATURE = 2.0  # OpenAI's own upper bound
MIN_TEMPERATURE = 1e-3
"""A temperature in (0, MIN_TEMPERATURE) samples as greedy (temperature 0): dividing float32
logits by a tiny value overflows them to inf, and any logit gap of 0.1 or more already leaves the
runner-up a probability below float32's smallest number."""
MIN_TOP_P = 1e-5
"""A top_p in (0, MIN_TOP_P) samples as greedy: the nucleus is the top token alone, because the
top token's probability is at least 1 / vocabulary size (> 1e-5 for any vocabulary below 100k
tokens), and float32 cannot hold such a top_p anyway."""
JSON_MEDIA_TYPES = ("application/json",)
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


MAX_STOP = 4  # OpenAI's limit on stop sequences per request


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False
    continuous_usage_stats: bool = False  # vLLM's: usage on every chunk too


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    temperature: float = Field(default=1.0, ge=0.0, le=MAX_TEMPERATURE)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=-1)  # vLLM's convention: -1 or 0 keeps every token
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    ignore_eos: bool = False
    n: int = Field(default=1, ge=1, le=1)
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(
        default=None, description=f"up to {MAX_STOP} sequences; the output ends before the "
                                  "first one, with finish_reason 'stop'")
    user: str | None = Field(default=None, description="accepted and not used")
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0,
                                           description="refused unless 0: no penalties here")
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0,
                                            description="refused unless 0: no penalties here")

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class CompletionRequest(_Common):
    prompt: str | list[int] | list[str]
    logprobs: int | None = Field(default=None, ge=0, le=5,
                                 description="refused unless null: no log-probabilities here")
    echo: bool | None = Field(default=None, description="refused when true")
    best_of: int | None = Field(default=None, ge=1, le=1)


class ContentPart(BaseModel):
    """One part of a chat message's content: only `{"type": "text", "text": ...}` is served."""

    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list[ContentPart]

    def text(self) -> str:
        """The content as text: a list of text parts joined by newlines (as vLLM does)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text or "" for part in self.content)


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = Field(default=None, description="refused when true")
    top_logprobs: int | None = Field(default=None, ge=0, le=20,
                                     description="refused unless null or 0")


def parse_request(raw: bytes, kind: Kind, limits: Limits) -> CompletionRequest | ChatRequest:
    """Validate a request body; raise `APIError` (400/413) for anything a client got wrong."""
    if len(raw) > limits.max_body_bytes:
        raise APIError(413, f"request body is {len(raw)} bytes; the limit is "
                       f"{limits.max_body_bytes}", code="body_too_large")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
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
        where = ".".join(str(p) for p in first["loc"])
        param = str(first["loc"][0]) if first["loc"] else None  # the field, as OpenAI names it
        raise APIError(400, f"{where}: {first['msg']}" if where else first["msg"],
                       param=param) from exc
    if isinstance(req, CompletionRequest) and isinstance(req.prompt, list):
        if len(req.prompt) == 0:
            raise APIError(400, "prompt must not be empty", param="prompt")
        if any(isinstance(p, str) for p in req.prompt) and len(req.prompt) != 1:
            raise APIError(400, "only one prompt per request is supported", param="prompt")
    if isinstance(req, ChatRequest):
        _check_content(req.messages)
    _check_stop(req.stop_sequences())
    _refuse_unserved(req)
    return req


def _check_content(messages: Sequence[ChatMessage]) -> None:
    """Content parts must be text, non-empty lists: name the first part that is not."""
    for i, message in enumerate(messages):
        if isinstance(message.content, str):
            continue
        if not message.content:
            raise APIError(400, f"messages.{i}.content: a list of parts must not be empty",
                           param="messages")
        for j, part in enumerate(message.content):
            where = f"messages.{i}.content.{j}"
            if part.type != "text":
                raise APIError(400, f"{where}: parts of type {part.type!r} are not supported: "
                               "this server takes text only (parts of type 'text')",
                               param="messages", code="unsupported_content_type")
            if part.text is None:
                raise APIError(400, f"{where}.text: a 'text' part needs its text",
                               param="messages")


def _check_stop(stops: Sequence[str]) -> None:
    if len(stops) > MAX_STOP:
        raise APIError(400, f"stop: at most {MAX_STOP} sequences, got {len(stops)}",
                       param="stop")
    if any(not s for s in stops):
        raise APIError(400, "stop: a stop sequence must not be empty", param="stop")


def _refuse_unserved(req: CompletionRequest | ChatRequest) -> None:
    """Options this server cannot honour are refused by name rather than silently ignored."""
    unserved: list[tuple[str, bool]] = [
        ("presence_penalty", bool(req.presence_penalty)),
        ("frequency_penalty", bool(req.frequency_penalty))]
    if isinstance(req, CompletionRequest):
        unserved += [("logprobs", req.logprobs is not None), ("echo", bool(req.echo))]
    else:
        unserved += [("logprobs", bool(req.logprobs)), ("top_logprobs", bool(req.top_logprobs))]
    for name, asked in unserved:
        if asked:
            raise APIError(400, f"{name}: not supported by this server; leave it unset",
                           param=name, code="unsupported_parameter")


def _no_constant(name: str) -> Any:
    """`json.loads` accepts NaN and Infinity, which are not JSON: refuse them."""
    raise ValueError(f"{name} is not a JSON value")


def check_content_type(content_type: str | None) -> None:
    """Raise a 415 unless the body is declared as JSON (a missing header is taken as JSON)."""
    if content_type is None:
        return
    media = content_type.partition(";")[0].strip().lower()
    if media not in JSON_MEDIA_TYPES and not media.endswith("+json"):
        raise APIError(415, f"Content-Type must be application/json, got {content_type!r}",
                       code="unsupported_media_type")


def check_model(requested: str | None, served: Sequence[str]) -> None:
    """Raise a 404 `model_not_found` (OpenAI's code; vLLM's message) unless `requested` is unset
    or one of the names this server answers to (`served`, the first is its own name)."""
    if requested and requested not in served:
        raise APIError(404, f"The model `{requested}` does not exist. Valid aliases: "
                       f"{', '.join(dict.fromkeys(served))}.", param="model",
                       code="model_not_found")


def sampling(temperature: float, top_p: float) -> tuple[float, float]:
    """(temperature, top_p) as the sampler gets them: greedy (0, 1) below `MIN_TEMPERATURE` or
    `MIN_TOP_P`, so no value that validation lets through can make the sampler's arithmetic fail."""
    if temperature < MIN_TEMPERATURE or top_p < MIN_TOP_P:
        return 0.0, 1.0
    return temperature, top_p


def chat_prompt(messages: Sequence[ChatMessage]) -> str:
    """A plain role-prefixed transcript: the presets (`tiny`) have no chat template."""
    lines = [f"{m.role}: {m.text()}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def chat_ids(messages: Sequence[ChatMessage], tokenizer: Tokenizer) -> list[int]:
    """The chat's prompt token ids: rendered by the model's own chat template when its tokenizer
    has one (a real model; what vLLM does), else `chat_prompt`'s transcript; encoded without
    added special tokens (the template writes its own)."""
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": m.role, "content": m.text()} for m in messages]
        text = str(tokenizer.apply_chat_template(  # type: ignore[attr-defined]
            turns, tokenize=False, add_generation_prompt=True))
    else:
        text = chat_prompt(messages)
    return tokenizer.encode(text, add_special_tokens=False)


def prompt_ids(
    req: CompletionRequest | ChatRequest, tokenizer: Tokenizer, max_context: int, limits: Limits
) -> tuple[list[int], GenParams]:
    """Token ids of the prompt and the generation parameters, after every limit check."""
    if isinstance(req, ChatRequest):
        ids = chat_ids(req.messages, tokenizer)
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
    temperature, top_p = sampling(req.temperature, req.top_p)
    sampled = temperature > 0  # a greedy row ignores every filter: no work spent on them
    params = GenParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                       seed=req.seed, ignore_eos=req.ignore_eos,
                       top_k=max(req.top_k, 0) if sampled else 0,
                       min_p=req.min_p if sampled else 0.0)
    return ids, params


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

    def __init__(self, kind: Kind, model: str, include_usage: bool = False,
                 continuous_usage: bool = False) -> None:
        self.kind = kind
        self.model = model
        self.include_usage = include_usage
        self.continuous_usage = continuous_usage
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

    def chunk(self, text: str, finish: str | None = None,
              counts: tuple[int, int] | None = None) -> bytes:
        """One stream chunk; `counts` (prompt, output tokens so far) adds its usage, as vLLM's
        `stream_options.continuous_usage_stats` asks."""
        obj = "text_completion" if self.kind == "completions" else "chat.completion.chunk"
        data = {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "choices": [self._choice(text, finish, delta=True)]}
        if counts is not None:
            data["usage"] = usage(*counts)
        return sse(data)

    def tail(self, finish: str, prompt_n: int, output_n: int) -> bytes:
        """The closing chunk with finish_reason, the usage chunk when asked, then [DONE]."""
        out = self.chunk("", finish, (prompt_n, output_n) if self.continuous_usage else None)
        if self.include_usage:
            obj = "text_completion" if self.kind == "completions" else "chat.completion.chunk"
            out += sse({"id": self.id, "object": obj, "created": self.created,
                        "model": self.model, "choices": [],
                        "usage": usage(prompt_n, output_n)})
        return out + SSE_DONE


def finish_reason(params: GenParams, tokens: Sequence[int], eos: int,
                  stopped: bool = False) -> str:
    """'stop' for a stop sequence or the model's EOS (unless ignored), else 'length'."""
    if stopped or (bool(tokens) and tokens[-1] == eos and not params.ignore_eos):
        return "stop"
    return "length"
