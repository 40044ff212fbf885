"""The OpenAPI document every FastAPI target serves at `/openapi.json`: the published contract.

The OpenAI routes read their body themselves (so every error is OpenAI-shaped, not FastAPI's
422), which leaves FastAPI nothing to describe them with. `install_openapi` adds what a client or
a fuzzer (schemathesis) needs: the request bodies, from the same pydantic models that validate
them (`targets.server.api`), with this server's `max_tokens` cap, and the error responses each route
may answer, as one OpenAI error object.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from targets.server.api import ChatRequest, CompletionRequest

REF = "#/components/schemas/{model}"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["message", "type"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]},
                       "code": {"type": ["string", "null"]}}}},
}
ERRORS = {"400": "invalid request", "401": "missing or wrong API key",
          "404": "unknown model", "413": "prompt or body over a limit",
          "415": "body not declared as JSON", "503": "at capacity or shutting down (Retry-After)"}
BODIES = {"/v1/completions": "CompletionRequest", "/v1/chat/completions": "ChatRequest"}


def _schemas(max_tokens_cap: int) -> dict[str, Any]:
    out: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for name, model in (("CompletionRequest", CompletionRequest), ("ChatRequest", ChatRequest)):
        schema = model.model_json_schema(ref_template=REF)
        out.update(schema.pop("$defs", {}))
        for field in ("max_tokens", "max_completion_tokens"):
            for option in schema["properties"].get(field, {}).get("anyOf", []):
                if option.get("type") == "integer":
                    option["maximum"] = max_tokens_cap
        out[name] = schema
    return out


def _error_responses() -> dict[str, Any]:
    ref = {"$ref": REF.format(model="Error")}
    return {status: {"description": what, "content": {"application/json": {"schema": ref}}}
            for status, what in ERRORS.items()}


def document(app: FastAPI, max_tokens_cap: int) -> dict[str, Any]:
    """The app's OpenAPI document with the OpenAI routes' bodies and errors filled in."""
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    doc.setdefault("components", {}).setdefault("schemas", {}).update(_schemas(max_tokens_cap))
    for path, body in BODIES.items():
        operation = doc["paths"][path]["post"]
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": REF.format(model=body)}}}}
        operation["responses"] = {
            "200": {"description": "the completion, or an SSE stream with `stream: true`",
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/event-stream": {"schema": {"type": "string"}}}},
            **_error_responses()}
    return doc


def install_openapi(app: FastAPI, *, max_tokens_cap: int) -> None:
    """Serve `document(app)` (built once, on the first request for it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, max_tokens_cap)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
