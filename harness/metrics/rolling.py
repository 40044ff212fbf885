"""What the clients saw of a rolling deploy (`[fault] kind = "rolling"`): pure, from the point's
samples and the deploy's steps (`harness.run.rolling` records them).

    record = rolling_summary(steps, fault, samples, warmup_end=2.0, load_end=31.5,
                             retry_refused=0)

- **windows**: steady (end of warm-up → the first replacement began) and deploy (→ the last
  one ended). A user request (an arrival and its resends, one `request_id`) belongs to the
  window it was due in; its TTFT and E2E count from then to its last attempt's first and last
  token, so a resend's waits are in them, as its user waited them.
- **failures** (attempts that ended from the deploy's start on) by kind, as the client saw them
  through the balancer (`Failures`): a replica's own 503 (draining), the balancer's 503 (it
  found no replica to take the connection), its 502/504 (a replica reset the connection before
  answering), an answer cut mid-way (truncated: the connection closed; aborted: an error event;
  stalled: no more tokens until the client's timeout), the client's own connection errors.
- **per replacement**: the answers cut from its signal until the next replacement's signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.metrics.distribution import Distribution
from harness.records.typed_json import FLOAT_DIGITS
from harness.samples import Sample
from harness.scenario.fault import Fault
from harness.summary.rolling import Failures, Replacement, RollingSummary, Window

BALANCER_503 = ("No server is available", "<html")  # HAProxy's own 503 page


@dataclass(frozen=True)
class DeploySteps:
    """What the deploy did, on the run clock: its replacements in order (their `truncated` is
    filled here), when it began and ended, and why it stopped early (None: it did not)."""

    replacements: tuple[Replacement, ...] = ()
    start_at: float | None = None
    end_at: float | None = None
    error: str | None = None


def failure_kind(sample: Sample) -> str:
    """The `Failures` field a failed attempt counts in."""
    error = sample.error or ""
    if sample.status == "refused" or sample.http_status == 503:
        return "balancer_503" if any(m in error for m in BALANCER_503) else "draining_503"
    if sample.http_status in (502, 504):
        return "bad_gateway"
    if sample.status == "truncated":
        return "truncated"
    if sample.http_status == 200 and sample.status == "http_error":
        return "aborted"  # an error event inside the stream
    if sample.http_status == 200 and sample.status == "timeout":
        return "stalled"
    if sample.status == "conn_error":
        refused = "refused" in error.lower() or "Cannot connect" in error
        return "refused" if refused else "reset"
    return "other"


def cut(sample: Sample) -> bool:
    """An answer begun and not completed: truncated, aborted or stalled (`failure_kind`)."""
    return sample.failed and failure_kind(sample) in ("truncated", "aborted", "stalled")


def failures(samples: Sequence[Sample]) -> Failures:
    counts: dict[str, int] = {}
    for s in samples:
        if s.failed:
            kind = failure_kind(s)
            counts[kind] = counts.get(kind, 0) + 1
    return Failures(**counts)


def _ended(s: Sample) -> float:
    end = s.done_at if s.done_at is not None else s.failed_at
    return end if end is not None else s.sent_at


def _requests(samples: Sequence[Sample]) -> dict[str, Sample]:
    """Each user request's last attempt."""
    last: dict[str, Sample] = {}
    for s in samples:
        if s.request_id not in last or s.attempt > last[s.request_id].attempt:
            last[s.request_id] = s
    return last


def window(final: Sequence[Sample], start: float | None, end: float | None) -> Window:
    """The user requests (last attempts, `final`) due in [start, end)."""
    if start is None or end is None:
        return Window(start_s=start, end_s=end, requests=0, ok=0, ttft_ms=None, e2e_ms=None)
    due = [s for s in final if start <= s.scheduled_at < end]
    ok = [s for s in due if s.ok]
    return Window(
        start_s=_at(start), end_s=_at(end), requests=len(due), ok=len(ok),
        ttft_ms=Distribution.of(1000 * (s.first_token_at - s.scheduled_at) for s in ok
                                if s.first_token_at is not None),
        e2e_ms=Distribution.of(1000 * (s.done_at - s.scheduled_at) for s in ok
                               if s.done_at is not None))


def _cut(replacements: Sequence[Replacement], samples: Sequence[Sample]) -> list[Replacement]:
    """Each replacement with the streams cut from its signal until the next one's."""
    signals = [r.signal_at_s if r.signal_at_s is not None else math.inf for r in replacements]
    ends = [s.failed_at for s in samples if cut(s) and s.failed_at is not None]
    out = []
    for i, r in enumerate(replacements):
        start, end = signals[i], min(signals[i + 1:], default=math.inf)
        out.append(replace(r, truncated=sum(start <= t < end for t in ends)))
    return out


def rolling_summary(steps: DeploySteps, fault: Fault, samples: Sequence[Sample], *,
                    warmup_end: float, load_end: float, retry_refused: int) -> RollingSummary:
    """The point's `fault.rolling` record (see the module docstring)."""
    start, end = steps.start_at, steps.end_at
    since = start if start is not None else math.inf
    after = [s for s in samples if _ended(s) >= since]
    final = list(_requests(samples).values())
    steady = [s for s in samples if warmup_end <= _ended(s) < since]
    replacements = _cut(steps.replacements, samples)
    return RollingSummary(
        replicas=fault.replicas, stop=fault.stop, gate=fault.gate, surge=fault.surge,
        retry_refused=retry_refused,
        check_interval_s=fault.check_interval_s, fall=fault.fall,
        deploy_start_at_s=_at(start), deploy_end_at_s=_at(end),
        deploy_s=_at(end - start) if start is not None and end is not None else None,
        completed=steps.error is None and end is not None
        and len(replacements) == fault.replicas,
        error=steps.error, load_covered=end is not None and load_end >= end,
        replacements=tuple(replacements),
        in_flight=sum(r.in_flight_at_signal or 0 for r in replacements),
        truncated=sum(cut(s) for s in after),
        failed=failures(after),
        failed_requests=sum(s.failed and _ended(s) >= since for s in final),
        retried=sum(s.attempt > 1 for s in samples if s.sent_at >= since),
        failed_steady=sum(s.failed for s in steady),
        steady=window(final, warmup_end, start),
        deploy=window(final, start, end))


def _at(t: float | None) -> float | None:
    return None if t is None else round(t, FLOAT_DIGITS)
