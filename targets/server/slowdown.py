"""An injected regression, for measuring patternbench's own decisions (docs/gates.md).

A gate, a compare page or a capacity search is only trusted once an experiment says how often
it catches a real regression of a known size. A real regression is slower code under the same
scenario, so the injection must change nothing the run records as a setting (the gate rightly
refuses a baseline whose settings or model differ). `PATTERNBENCH_INJECT_SLOWDOWN=1.5` in a
target's environment stretches the time it takes to produce each token — the first (its TTFT)
and every later one — by that factor, as slower code would: after a token took Δ to come, the
stream waits (factor − 1) · Δ more before handing it on. Every model target honours it (the
model-job strategy wraps its token stream); the run records the factor in its manifest
(`injected_slowdown`), and `scripts/gate_error_rates.py` uses it for its A/B runs.

    PATTERNBENCH_INJECT_SLOWDOWN=1.2 patternbench run scenarios/ci.toml   # 20% slower per token
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

from targets.server.job import Job, SyncTokenStream, TokenStream

ENV = "PATTERNBENCH_INJECT_SLOWDOWN"


def injected(environ: os._Environ[str] | dict[str, str] = os.environ) -> float:
    """The factor asked for (1.0 when unset); `ValueError` in one line for a bad one."""
    raw = environ.get(ENV, "").strip()
    if not raw:
        return 1.0
    try:
        factor = float(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a number ≥ 1, got {raw!r}") from None
    if not math.isfinite(factor) or factor < 1:
        raise ValueError(f"{ENV} must be a number ≥ 1, got {raw!r}")
    return factor


def slowed(generate: TokenStream, factor: float) -> TokenStream:
    """`generate` with each token's production time stretched by `factor` (asyncio)."""
    if factor == 1.0:
        return generate

    async def tokens(job: Job) -> AsyncIterator[int]:
        inner = generate(job)
        last = time.perf_counter()
        try:
            async for token in inner:
                await asyncio.sleep((factor - 1) * (time.perf_counter() - last))
                yield token
                last = time.perf_counter()
        finally:
            if isinstance(inner, AsyncGenerator):
                await inner.aclose()

    return tokens


def slowed_sync(generate: SyncTokenStream, factor: float) -> SyncTokenStream:
    """`generate` with each token's production time stretched by `factor` (a thread)."""
    if factor == 1.0:
        return generate

    def tokens(job: Job) -> Iterator[int]:
        inner = generate(job)
        last = time.perf_counter()
        try:
            for token in inner:
                time.sleep((factor - 1) * (time.perf_counter() - last))
                yield token
                last = time.perf_counter()
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    return tokens
