"""schemathesis against every FastAPI target's published `/openapi.json`: no server error (5xx).

Each target's own document is fetched from the running server and fuzzed on both OpenAI routes,
with valid bodies (positive mode: every in-range value, tiny floats and 2^63-1 seeds included)
and invalid ones (negative mode), `MAX_EXAMPLES` each, derandomized so a run is repeatable.
Valid bodies have `max_tokens` cut to `MAX_TOKENS` so the suite stays short on a CPU (a long
generation tests nothing more here). The counts are printed (`-s`) per target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import Case
from schemathesis.generation import GenerationMode

from tests.contract.client import request
from tests.contract.conftest import Fleet, contract_targets, target_params

MAX_EXAMPLES = 10  # per route and mode: 40 cases a target
MAX_TOKENS = 4
ROUTES = ("/v1/completions", "/v1/chat/completions")
FASTAPI_TARGETS = [name for name in contract_targets() if name.startswith("fastapi_")]

pytestmark = pytest.mark.parametrize("target", target_params(*FASTAPI_TARGETS))


def bounded(case: Case[Any]) -> Case[Any]:
    """`case` with a short generation, whatever its body asked for."""
    body = case.body
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TOKENS:
                body[key] = MAX_TOKENS
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = MAX_TOKENS
    return case


def fuzz(url: str, headers: dict[str, str], doc: dict[str, Any]) -> tuple[int, list[str]]:
    """(cases sent, the 5xx answers) over both routes and both generation modes."""
    schema = schemathesis.openapi.from_dict(doc)
    sent: list[int] = []
    errors: list[str] = []
    for path in ROUTES:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = schema[path]["POST"].as_strategy(generation_mode=mode).map(bounded)
            sender(strategy, url, headers, f"{path} {mode.value}", sent, errors)()
    return len(sent), errors


def sender(strategy: SearchStrategy[Case[Any]], url: str, headers: dict[str, str], what: str,
           sent: list[int], errors: list[str]) -> Callable[[], None]:
    """A hypothesis test sending `strategy`'s cases: each one counted in `sent`, each 5xx
    described in `errors`."""

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def send(case: Case[Any]) -> None:
        response = case.call(base_url=url, headers=headers, timeout=120)
        sent.append(response.status_code)
        if response.status_code >= 500:
            errors.append(f"{what}: {response.status_code} {response.text[:200]} "
                          f"for {case.body!r}"[:600])

    return send


def test_schemathesis_finds_no_server_error(fleet: Fleet, target: str) -> None:
    server = fleet.get(target)
    reply = request(server.url, "GET", "/openapi.json")
    assert reply.status == 200, reply.body[:200]
    doc = reply.json()
    assert set(ROUTES) <= set(doc["paths"])
    sent, errors = fuzz(server.url, fleet.auth(target), doc)
    print(f"schemathesis {target}: {sent} cases, {len(errors)} server errors")
    assert sent >= len(ROUTES) * 2
    assert errors == []
    assert request(server.url, "GET", "/health").status == 200
