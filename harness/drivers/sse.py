"""Server-sent events, as OpenAI-compatible servers stream them, parsed incrementally.

`SSEParser.feed(bytes)` returns the complete `data:` payloads seen so far (events may be split
across network reads or packed several to a read). `read_chunk(payload)` says what one payload
carries: a token, a usage report, the `[DONE]` marker, or an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class SSEParser:
    """Incremental parser for `data: ...` events separated by blank lines."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                return events
            line = self._buffer[:nl].rstrip(b"\r")
            self._buffer = self._buffer[nl + 1:]
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data).decode("utf-8", "replace"))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            # comments (":...") and other fields (event:, id:, retry:) are ignored

    def close(self) -> list[str]:
        """Flush an event left without its closing blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events


@dataclass(frozen=True)
class Chunk:
    """What one SSE payload means to the driver."""

    done: bool = False
    token: bool = False
    text: str = ""
    usage_completion_tokens: int | None = None
    usage_prompt_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None


DONE = Chunk(done=True)


def read_chunk(payload: str) -> Chunk:
    """Classify a payload. A chunk counts as a token when it has a choice whose text is non-empty
    or which has no finish_reason yet (servers send '' for a token that ends mid-character)."""
    if payload.strip() == "[DONE]":
        return DONE
    try:
        data: Any = json.loads(payload)
    except json.JSONDecodeError:
        return Chunk(error=f"unparseable SSE payload: {payload[:80]!r}")
    if not isinstance(data, dict):
        return Chunk(error="SSE payload is not an object")
    if data.get("error") is not None:
        err = data["error"]
        return Chunk(error=str(err.get("message", err)) if isinstance(err, dict) else str(err))
    usage = data.get("usage") or {}
    choices = data.get("choices") or []
    text = ""
    finish = None
    token = False
    if choices:
        choice = choices[0]
        if "text" in choice:
            text = choice.get("text") or ""
        else:
            text = (choice.get("delta") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        token = bool(text) or finish is None
        if not text and finish is None and "delta" in choice and "role" in choice["delta"]:
            token = False  # a chat stream's opening role-only chunk carries no token
    return Chunk(
        token=token,
        text=text,
        finish_reason=finish,
        usage_completion_tokens=usage.get("completion_tokens"),
        usage_prompt_tokens=usage.get("prompt_tokens"),
    )
