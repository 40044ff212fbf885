"""The requests a load point sends, built before the load starts.

Building an exact-length prompt costs ~1.6 ms at 128 tokens on this CPU (the tokenizer check in
`PromptFactory.build_prompt`), far too slow to do between a request's scheduled and sent times.
So every driver draws from a pool built up front: `POOL_SIZE` prompts (`PromptFactory.get(0..n-1)`)
that request i cycles through as `i % n`, or, for a trace, one prompt per arrival with the
trace's own token counts. Each driver sees the same pool, so the load is identical across drivers.
Built prompts are cached per `PromptFactory`, so later points and drivers of a run reuse them.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence

from harness.arrivals import Arrival
from harness.drivers.job import LoadJob
from harness.workload import PromptFactory, RequestSpec, request_body

POOL_SIZE = 256

_Key = tuple[int, int | None, int | None]
_CACHE: weakref.WeakKeyDictionary[PromptFactory, dict[_Key, RequestSpec]] = (
    weakref.WeakKeyDictionary())


def _spec(prompts: PromptFactory, key: _Key) -> RequestSpec:
    built = _CACHE.setdefault(prompts, {})
    spec = built.get(key)
    if spec is None:
        index, prompt_tokens, output_tokens = key
        spec = built[key] = prompts.get(index, prompt_tokens=prompt_tokens,
                                        output_tokens=output_tokens)
    return spec


class RequestPool:
    """The request specs of one point; `spec(i)` is what request i sends."""

    def __init__(self, job: LoadJob, arrivals: Sequence[Arrival] | None) -> None:
        traced = arrivals is not None and any(a.prompt_tokens for a in arrivals)
        if traced and arrivals is not None:
            keys: list[_Key] = [(i, a.prompt_tokens, a.output_tokens)
                                for i, a in enumerate(arrivals)]
        else:
            count = POOL_SIZE
            if job.point.max_requests:
                count = min(count, job.point.max_requests)
            if arrivals is not None:
                count = min(count, max(1, len(arrivals)))
            keys = [(i, None, None) for i in range(count)]
        self.specs: list[RequestSpec] = [_spec(job.prompts, k) for k in keys]
        self.bodies: list[bytes] = [
            json.dumps(request_body(s, job.workload, job.model_name)).encode()
            for s in self.specs]

    def __len__(self) -> int:
        return len(self.specs)

    def spec(self, index: int) -> RequestSpec:
        return self.specs[index % len(self.specs)]

    def body(self, index: int) -> bytes:
        """The JSON body request `index` sends (encoded once, before the load)."""
        return self.bodies[index % len(self.bodies)]
