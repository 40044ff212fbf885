"""When requests are due: a schedule computed from a seeded RNG before the load starts.

`closed` has no schedule (a request is due when a slot frees up). Open-loop kinds return the
send offsets, in seconds from the start of the load point, for the whole point (warm-up included).
"""

from __future__ import annotations

import random

from harness.scenario import LoadPoint


def schedule(point: LoadPoint, seed: int) -> list[float] | None:
    """Offsets (s) at which requests are due, or None for closed-loop points."""
    if point.kind == "closed":
        return None
    total = point.warmup_s + point.duration_s
    rate = point.rate_rps or 0.0
    rng = random.Random(seed)
    offsets: list[float] = []
    if point.kind == "constant":
        n = int(total * rate)
        offsets = [i / rate for i in range(n)]
    elif point.kind == "poisson":
        t = rng.expovariate(rate)
        while t < total:
            offsets.append(t)
            t += rng.expovariate(rate)
    else:
        raise NotImplementedError(f"arrival kind {point.kind!r} is not implemented yet")
    if point.max_requests:
        offsets = offsets[: point.max_requests]
    return offsets
