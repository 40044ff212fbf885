"""What a load loop does when its target stops answering: wait before retrying, and give up.

A closed loop sends a user's next request as soon as the last one ended. Against a dead target
every request fails within a millisecond (connection refused), so without a pause one user sends
thousands of requests a second and the samples file fills with errors. Two small state machines,
one concept — the loop's reaction to failing requests — shared by every driver loop:

    backoff = Backoff()                 # one per simulated user
    streak = ErrorStreak()              # one per driver loop
    sample = await one(...)
    delay_s = backoff.after(sample)     # 0.0 after a success or a slow failure
    reason = streak.observe(sample)     # a one-line reason once the target looks dead
    if reason: stop the point, marked failed with `reason`

`Backoff`: a request the server did no work for — refused (503, backpressure), a connection
error, or any failure within `IMMEDIATE_S` of being sent — makes that user wait
`BASE_S · 2^(k-1)` (k = such failures in a row, capped at `MAX_S`) before its next request, as a
well-behaved client does; a success or a failure that took longer (a timeout, a 500 after
work) resets it. On a busy machine a 503 can take more than `IMMEDIATE_S` to arrive, so refusals
and connection errors back off whatever they took.

`retry_delay`: how long a client that retries 503s (`[client] retry_refused`) waits before
attempt k+1: uniform in [0, min(`RETRY_MAX_S`, base · 2^k)] ("full jitter"), so refused clients
spread out instead of coming back together.

`ErrorStreak`: `LIMIT` consecutive requests that failed the way a dead server fails (connection
error or reset, or an HTTP 5xx other than 503) mean the target is gone. Refusals (503), timeouts
(a slow target, not a dead one) and truncated streams do not count, and do not reset the streak.

A stream the client abandoned (`[fault] disconnect`, status `abandoned`) is no failure for
either: the server was streaming tokens, so it resets both, as a success does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.samples import Sample

IMMEDIATE_S = 0.005
"""A failure this fast (sent → failed) never reached a model: refused, reset or a 5xx at once."""
BASE_S = 0.01  # the first back-off
MAX_S = 1.0  # the longest back-off
LIMIT = 20  # consecutive dead-server failures after which the target is declared dead
RETRY_MAX_S = 2.0  # the longest wait before a refused request is sent again


def _ended_at(sample: Sample) -> float | None:
    return sample.failed_at if sample.failed_at is not None else sample.done_at


def immediate(sample: Sample) -> bool:
    """Whether `sample` failed within `IMMEDIATE_S` of being sent."""
    end = _ended_at(sample)
    return sample.failed and end is not None and end - sample.sent_at < IMMEDIATE_S


def dead_server_failure(sample: Sample) -> bool:
    """A failure only a dead or broken server gives: connection error, or a 5xx but 503."""
    if sample.status == "conn_error":
        return True
    status = sample.http_status
    return sample.status == "http_error" and status is not None and status >= 500


@dataclass
class Backoff:
    """One user's exponential back-off after immediate failures (see the module docstring)."""

    base_s: float = BASE_S
    max_s: float = MAX_S
    failures: int = 0

    def after(self, sample: Sample) -> float:
        """Seconds this user waits before its next request, given how `sample` ended."""
        if not (immediate(sample) or sample.status in ("refused", "conn_error")):
            self.failures = 0
            return 0.0
        self.failures += 1
        return min(self.max_s, self.base_s * 2.0 ** (self.failures - 1))


@dataclass
class ErrorStreak:
    """Detects a dead target from consecutive dead-server failures (see the module docstring)."""

    limit: int = LIMIT
    count: int = 0
    last_error: str | None = None

    def observe(self, sample: Sample) -> str | None:
        """Count `sample`; the reason the target is dead once `limit` failures ran in a row."""
        if not sample.failed:
            self.count = 0
        elif dead_server_failure(sample):
            self.count += 1
            self.last_error = sample.error or sample.status
        if self.count < self.limit:
            return None
        return (f"{self.count} requests in a row failed like a dead server "
                f"(last: {(self.last_error or '').strip()[:160]})")


def retry_delay(attempt: int, base_s: float, rng: random.Random) -> float:
    """Seconds to wait before resending a request refused `attempt + 1` times (full jitter)."""
    return rng.uniform(0.0, min(RETRY_MAX_S, base_s * 2.0 ** attempt))
