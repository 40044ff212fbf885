"""The requests a load point sends, built before the load starts.

Building an exact-length prompt costs ~1.6 ms at 128 tokens on this CPU (the tokenizer check in
`PromptFactory.build_prompt`), far too slow to do between a request's scheduled and sent times.
So every driver draws from a pool built up front, request i of the point sending entry
`i % len(pool)`:

- distinct prompts (default): the point's own block of run-wide indices (`LoadJob.prompt_offset`,
  from `PromptFactory.next_block`), one `PromptFactory.unique` prompt per request the point can
  send: one per arrival of an open-loop schedule or trace, `max_requests` (or `min_requests`,
  whichever is larger) when set, else `CLOSED_POOL_SIZE` for a closed loop. No two requests of a
  run share a prompt, unless a closed loop without `max_requests` sends more than that.
- `workload.prompt_reuse = true`: `POOL_SIZE` prompts `PromptFactory.get(0..n-1)`, the same for
  every point, target and driver (built once per run and cached).

The builtin driver builds the pool twice (before the clock runs, then in each process): the last
pool built is kept, so the second build is free.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence

from harness.arrivals import Arrival
from harness.drivers.job import LoadJob
from harness.workload.prompts import BLOCK, PromptFactory, RequestSpec, request_body

POOL_SIZE = 256  # prompt_reuse: the shared pool
CLOSED_POOL_SIZE = 8192  # distinct prompts: a closed loop without max_requests

_Key = tuple[int, int | None, int | None]
_CACHE: weakref.WeakKeyDictionary[PromptFactory, dict[_Key, RequestSpec]] = (
    weakref.WeakKeyDictionary())
_Built = tuple[list[RequestSpec], list[bytes]]
_LAST: weakref.WeakKeyDictionary[PromptFactory, tuple[object, _Built]] = (
    weakref.WeakKeyDictionary())


def _spec(prompts: PromptFactory, key: _Key) -> RequestSpec:
    built = _CACHE.setdefault(prompts, {})
    spec = built.get(key)
    if spec is None:
        index, prompt_tokens, output_tokens = key
        spec = built[key] = prompts.get(index, prompt_tokens=prompt_tokens,
                                        output_tokens=output_tokens)
    return spec


def pool_size(job: LoadJob, arrivals: Sequence[Arrival] | None) -> int:
    """How many prompts the point's pool holds (traces aside: one per line)."""
    point = job.point
    if job.workload.prompt_reuse:
        count = POOL_SIZE
    elif arrivals is not None:
        count = len(arrivals)
    else:
        count = max(point.max_requests, point.min_requests) or CLOSED_POOL_SIZE
    if point.max_requests:
        count = min(count, point.max_requests)
    if arrivals is not None:
        count = min(count, len(arrivals))
    return max(1, min(count, BLOCK))


def _bodies(job: LoadJob, specs: list[RequestSpec]) -> list[bytes]:
    return [json.dumps(request_body(s, job.workload, job.model_name)).encode() for s in specs]


def _build(job: LoadJob, keys: list[_Key]) -> _Built:
    """The point's specs and encoded bodies; the last pool built is reused as is."""
    marker = (job.prompt_offset, job.workload, job.model_name, tuple(keys))
    last = _LAST.get(job.prompts)
    if last is not None and last[0] == marker:
        return last[1]
    if job.workload.prompt_reuse:
        specs = [_spec(job.prompts, k) for k in keys]
    else:
        specs = [job.prompts.unique(job.prompt_offset + i, prompt_tokens=p, output_tokens=o)
                 for i, p, o in keys]
    built = (specs, _bodies(job, specs))
    _LAST[job.prompts] = (marker, built)
    return built


class RequestPool:
    """The request specs of one point; `spec(i)` is what request i sends."""

    def __init__(self, job: LoadJob, arrivals: Sequence[Arrival] | None) -> None:
        traced = arrivals is not None and any(a.prompt_tokens for a in arrivals)
        if traced and arrivals is not None:
            keys: list[_Key] = [(i, a.prompt_tokens, a.output_tokens)
                                for i, a in enumerate(arrivals)][:BLOCK]
        else:
            keys = [(i, None, None) for i in range(pool_size(job, arrivals))]
        self.specs, self.bodies = _build(job, keys)

    def __len__(self) -> int:
        return len(self.specs)

    def spec(self, index: int) -> RequestSpec:
        return self.specs[index % len(self.specs)]

    def body(self, index: int) -> bytes:
        """The JSON body request `index` sends (encoded once, before the load)."""
        return self.bodies[index % len(self.bodies)]
