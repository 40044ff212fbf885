"""An injected regression, for measuring patternbench's own decisions (docs/gates.md).

A gate, a compare page or a capacity search is only trusted once an experiment says how often
it catches a real regression of a known size. A real regression is slower code under the same
scenario, so the injection must change nothing the run records as a setting (the gate rightly
refuses a baseline whose settings or model differ). `PATTERNBENCH_INJECT_SLOWDOWN=1.5` in a
target's environment makes the model's own work that much slower: after each piece of it — a
request's next token from a per-request engine (`ModelEngine.generate`: the prefill and first
token, then each decode step), a continuous batch's step (`BatchModel.step`) — the thread that
did it spends (factor − 1) times as long again, as slower code would: on the CPU by computing
for (factor − 1) × the CPU time the work took in that thread (a busy loop holding the GIL and a
core: sleeping would let other threads use the core, and a CPU-bound server would lose
nothing; wall time would count the waits of a thread sharing the GIL), on a device or a
sleeping `sim:` model by waiting (factor − 1) × the wall time. Everything
above the model (queues, batching, streaming, the HTTP server) then behaves as it would with a
slower model. `load_engine` and `load_batch_model` apply it; request-level batching
(`fastapi_dynamic_batching`, which steps the model itself) is not slowed. The run records the
factor in its manifest (`injected_slowdown`); `scripts/gate_error_rates.py` uses it for its A/B
runs.

    PATTERNBENCH_INJECT_SLOWDOWN=1.2 patternbench run scenarios/ci.toml   # 20% slower model
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

ENV = "PATTERNBENCH_INJECT_SLOWDOWN"


def injected(environ: Mapping[str, str] = os.environ) -> float:
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


def clock(spin: bool) -> float:
    """The time the model's work is measured in: this thread's CPU time when it computes (wall
    time would count the waits of a thread sharing the GIL with 15 others), else wall time."""
    return time.thread_time() if spin else time.perf_counter()


def wait(seconds: float, spin: bool) -> None:
    """Spend `seconds` as the slower model would: computing (`spin`: a busy loop until this
    thread used that much more CPU time, holding the GIL and a core like more CPU work) or
    waiting on a device (sleeping, like a GPU kernel)."""
    if not spin:
        time.sleep(seconds)
        return
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def slowed_tokens(tokens: Iterator[int], factor: float,
                  spin: bool = False) -> Generator[int, None, None]:
    """`tokens` (a lazy generator: each `next` does the work of one token) with (factor − 1) ×
    that work spent again after each (`wait`); the inner generator is closed with this one."""
    try:
        while True:
            start = clock(spin)
            try:
                token = next(tokens)
            except StopIteration:
                return
            wait((factor - 1) * (clock(spin) - start), spin)
            yield token
    finally:
        close = getattr(tokens, "close", None)
        if close is not None:
            close()


def slowed_call(work: Callable[..., Any], factor: float,
                spin: bool = False) -> Callable[..., Any]:
    """`work` followed by (factor − 1) × the time it took, spent again (a batch's step)."""
    def call(*args: Any, **kwargs: Any) -> Any:
        start = clock(spin)
        out = work(*args, **kwargs)
        wait((factor - 1) * (clock(spin) - start), spin)
        return out

    return call
