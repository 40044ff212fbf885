"""external — any OpenAI-compatible server you already run (vLLM, TGI, SGLang, llama.cpp, Ollama…).

The harness never starts or stops it: it checks that the base URL answers, then only measures.
A scenario names it with options::

    [[targets]]
    name = "external"
    label = "my_vllm"
    options = { url = "http://127.0.0.1:8000", api_key = "sk-...", api = "chat",
                model = "served-name" }

- `url` (required): the base URL, without `/v1` (a trailing `/v1` is accepted and dropped).
- `api_key` (optional): sent as `Authorization: Bearer ...` on every request.
- `api` (optional): `completions` or `chat`; overrides the scenario's `workload.api` for this
  target, for servers that speak only one of them.
- `model` (optional): the `model` field sent in requests (the server's served name); default the
  first model the server lists at `GET /v1/models`, else the scenario's model spec.

Reachability: `GET /health`, else `GET /v1/models`, must answer 200 within `timeout_s`. Prompts are
built with the scenario model's tokenizer: token counts are exact only when the server uses the same
tokenizer; output counts come from the server's `usage` when it sends one.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from targets.server.config import ServeConfig, parse_options

PROBE_PATHS = ("/health", "/v1/models")


class ExternalError(ValueError):
    """The external target is misconfigured or unreachable; the message is one line."""


@dataclass(frozen=True)
class ExternalConfig:
    """The external target's options, parsed by `from_options`."""

    url: str
    api_key: str | None = None
    api: Literal["completions", "chat"] | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"target option url must be an http(s) base URL, got {self.url!r}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ExternalConfig:
        """The options, with the url's trailing `/` or `/v1` dropped; `ExternalError` (one
        line) for an unknown, missing or ill-typed option."""
        try:
            cfg = parse_options(cls, options)
        except ValueError as exc:
            raise ExternalError(f"external: {exc}") from None
        return replace(cfg, url=cfg.url.rstrip("/").removesuffix("/v1"),
                       api_key=cfg.api_key or None, model=cfg.model or None)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def probe(cfg: ExternalConfig, timeout_s: float = 10.0) -> str:
    """Return the first probe path that answers 200; raise `ExternalError` saying what failed."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while True:
        seen.clear()
        for path in PROBE_PATHS:
            request = urllib.request.Request(cfg.url + path, headers=cfg.headers())
            try:
                with urllib.request.urlopen(request, timeout=min(5.0, timeout_s)) as resp:
                    if resp.status == 200:
                        return path
                    seen.append(f"{path} → HTTP {resp.status}")
            except urllib.error.HTTPError as exc:
                seen.append(f"{path} → HTTP {exc.code}")
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                seen.append(f"{path} → {reason}")
        if time.monotonic() >= deadline:
            raise ExternalError(f"external: {cfg.url} is not reachable ({'; '.join(seen)}); "
                                "is the server running, and is the url right?")
        time.sleep(0.5)


def listed_model(cfg: ExternalConfig, timeout_s: float = 5.0) -> str | None:
    """The first model id the server lists at `GET /v1/models` (OpenAI's `{"data": [{"id":
    ...}]}`); None when it lists none or does not answer that route."""
    request = urllib.request.Request(cfg.url + "/v1/models", headers=cfg.headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    name = first.get("id") if isinstance(first, dict) else None
    return name if isinstance(name, str) and name else None


def serve(cfg: ServeConfig) -> None:
    """`python -m targets external` has nothing to run: the server is yours."""
    raise SystemExit("external: the harness never starts this server; run it yourself and name "
                     "its url in the scenario (options = { url = \"http://127.0.0.1:8000\" })")
