"""A locust process's clock and the one offset that places its times on the run clock.

Every locust process stamps a request's times (scheduled, sent, first byte, each token, done or
failed) on its *own* monotonic clock, so each duration (TTFT, E2E, ITL) is read on one clock and
stays exact whichever machine measured it. `run = local + offset_s` then places the request on
the run clock: the same constant for every time of one process, so it moves a request without
changing any of its durations.

The offset:

- The local runner and the master run on the harness's machine, where `perf_counter_ns` is the
  run clock's own (CLOCK_MONOTONIC is system-wide): the offset is exact (`exact_offset`).
- A worker may run on another machine, whose monotonic clock counts from its own boot; no wall
  clock (chrony/PTP) is used. At the start of each test the worker asks the master for the
  run-clock time a few times over locust's own connection (a custom message): it sends its local
  time `t0`, the master answers with the run-clock time `m`, the worker reads `t1` when the answer
  arrives. Then `offset = m - (t0 + t1) / 2`, wrong by at most half the round trip,
  `(t1 - t0) / 2` (`error_s`); the ping with the shortest round trip is kept
  (`offset_from_pings`). Only after that does the worker report ready. Drift between two
  monotonic clocks over one point (tens of ppm, i.e. well under a millisecond a minute) is left
  uncorrected.

`SKEW_ENV` shifts a worker's local clock by a number of seconds, as another machine's would be.
It exists for the test that runs a master and two workers on one machine; a worker honours it,
the local runner and the master never do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SKEW_ENV = "PATTERNBENCH_LOCUST_TEST_CLOCK_SKEW_S"
MESSAGE = "patternbench_clock"  # the locust custom message of the handshake, both ways
PINGS = 8


@dataclass(frozen=True)
class ClockOffset:
    """`run = local + offset_s`, within ± `error_s` (0 when exact), both in seconds."""

    offset_s: float
    error_s: float


def exact_offset(local_origin_ns: int, run_origin_ns: int) -> ClockOffset:
    """Offset of a clock counting from `local_origin_ns` on the run clock's own counter."""
    return ClockOffset(offset_s=(local_origin_ns - run_origin_ns) / 1e9, error_s=0.0)


def offset_from_pings(pings: Iterable[tuple[float, float, float]]) -> ClockOffset:
    """The offset from handshake pings `(t0 local sent, run-clock answer, t1 local received)`:
    the one with the shortest round trip.

    >>> offset_from_pings([(10.0, 105.0, 10.004), (11.0, 106.2, 11.002)])
    ClockOffset(offset_s=95.199, error_s=0.001)
    """
    best: ClockOffset | None = None
    for t0, run, t1 in pings:
        if t1 < t0:
            raise ValueError(f"a ping came back before it was sent ({t0} > {t1})")
        candidate = ClockOffset(offset_s=round(run - (t0 + t1) / 2, 9),
                                error_s=round((t1 - t0) / 2, 9))
        if best is None or candidate.error_s < best.error_s:
            best = candidate
    if best is None:
        raise ValueError("no clock handshake ping was answered")
    return best
