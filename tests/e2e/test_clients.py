"""The clients people measure servers with, against fastapi_batching on the real `tiny` model:
the official `openai` SDK's async client (streaming and not), and each parity-check client
(`harness.run.parity.clients`): patternbench's own driver, `vllm bench serve`, GuideLLM and AIPerf,
each a short Poisson run that must complete every request with no error. An external client
whose venv is missing (`make vllm`, `make guidellm`, `make aiperf`) skips, saying so.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from harness.run.launcher import TargetProcess, start_target
from harness.run.parity.check import run_builtin
from harness.run.parity.clients import CLIENTS, run_external
from harness.run.parity.load import METRICS, Leg, ParityLoad
from targets.model.store import materialize

REQUESTS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetProcess]:
    logs = tmp_path_factory.mktemp("logs")
    with start_target("fastapi_batching", "fastapi_batching", model="tiny", device="cpu",
                      options={}, log_path=logs / "fastapi_batching.log") as target:
        yield target


def load(server: TargetProcess) -> ParityLoad:
    return ParityLoad(url=server.url, model="tiny", tokenizer="tiny", rate_rps=4.0,
                      requests=REQUESTS, prompt_tokens=32, output_tokens=8, temperature=0.0,
                      seed=1, client_cpus=None)


def test_openai_async_client_streams_and_completes(server: TargetProcess) -> None:
    async def main() -> tuple[str, str, int | None]:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused",
                                      max_retries=0, timeout=60) as client:
            whole = await client.chat.completions.create(
                model="tiny", max_completion_tokens=6, temperature=0,
                messages=[{"role": "user", "content": [{"type": "text", "text": "Hello"}]}])
            stream = await client.chat.completions.create(
                model="tiny", max_completion_tokens=6, temperature=0, stream=True,
                stream_options={"include_usage": True},
                messages=[{"role": "user", "content": "Hello"}])
            pieces, used = [], None
            async for chunk in stream:
                pieces += [c.delta.content or "" for c in chunk.choices]
                used = chunk.usage.completion_tokens if chunk.usage else used
            return whole.choices[0].message.content or "", "".join(pieces), used

    whole, streamed, used = asyncio.run(main())
    assert whole and streamed == whole  # text parts and a string are the same prompt
    assert used == 6


def check(leg: Leg) -> None:
    assert leg.error is None, leg.error
    assert (leg.completed, leg.failed) == (REQUESTS, 0)
    named = {k for k, v in leg.values.items() if v is not None}
    assert {"output_tok_s", "req_s", "ttft_p50_ms", "tpot_p50_ms", "e2e_p50_ms"} <= named
    assert all(v is None or v > 0 for v in leg.values.values()), leg.values
    assert set(leg.values) == {m.key for m in METRICS}


def test_patternbench_driver_leg(server: TargetProcess, tmp_path: Path) -> None:
    check(run_builtin(load(server), tmp_path / "builtin", 1, io.StringIO()))


@pytest.mark.parametrize("name", ["vllm", "guidellm", "aiperf"])
def test_external_client_completes_a_short_run_with_no_error(server: TargetProcess,
                                                             tmp_path: Path, name: str) -> None:
    client = CLIENTS[name]
    if (why := client.missing()) is not None:
        pytest.skip(why)
    check(run_external(client, load(server), tmp_path / name, materialize("tiny"), 1))
