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
  scenario's model spec.

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
from dataclasses import dataclass
from typing import Any

from targets.config import ServeConfig

APIS = ("completions", "chat")
PROBE_PATHS = ("/health", "/v1/models")


class ExternalError(ValueError):
    """The external target is misconfigured or unreachable; the message is one line."""


@dataclass(frozen=True)
class ExternalConfig:
    url: str
    api_key: str | None = None
    api: str | None = None
    model: str | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ExternalConfig:
        known = {"url", "api_key", "api", "model"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ExternalError(f"external: unknown options {unknown}; expected {sorted(known)}")
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ExternalError(f"external: option url must be an http(s) base URL, got {url!r}")
        url = url.rstrip("/")
        url = url.removesuffix("/v1")
        api = options.get("api")
        if api is not None and api not in APIS:
            raise ExternalError(f"external: option api must be one of {APIS}, got {api!r}")
        key, model = options.get("api_key"), options.get("model")
        return cls(url=url, api_key=str(key) if key else None, api=api,
                   model=str(model) if model else None)

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


def served_models(cfg: ExternalConfig, timeout_s: float = 5.0) -> list[str]:
    """The model ids `GET /v1/models` lists, or [] when the server has no such endpoint."""
    request = urllib.request.Request(cfg.url + "/v1/models", headers=cfg.headers())
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            data = json.loads(resp.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return []
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m["id"]) for m in items or [] if isinstance(m, dict) and "id" in m]


def serve(cfg: ServeConfig) -> None:
    """`python -m targets external` has nothing to run: the server is yours."""
    raise SystemExit("external: the harness never starts this server; run it yourself and name "
                     "its url in the scenario (options = { url = \"http://127.0.0.1:8000\" })")
