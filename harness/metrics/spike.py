"""Spike accounting: an open-loop `spike` point's samples → the load before, during and after
the spike, how long the target took to recover, and its memory growth
(`harness.summary.spike.SpikeSummary`, the point's `spike` in summary.json).

    record = spike_summary(samples, point, started_at=10.0, warmup_end=11.0, load_end=25.0,
                           retry_refused=4, records=telemetry.records)

Pure: samples and telemetry records in, a record out (None for a point that is not a spike).
Times are on the run clock.

- The spike is [start, end): the point's start + `harness.arrivals.spike_window(point)`.
- Phases: before = [end of warm-up, spike start), during = [spike start, spike end), after =
  [spike end, end of the load] (and later: the retries of its last requests). An *attempt* is
  one sample, what the server saw; it counts in the phase it was sent in. A *user request* is an
  arrival with its retries (one `request_id`, `Sample.attempt` 2, 3, ... on the retries); it
  counts in the phase its first attempt was due in. Its outcome is its last attempt's: answered
  (ok), gave up (refused: retries spent, or none allowed), failed (anything else); what its user
  waited runs from the first attempt's `scheduled_at` to the answer's first token (its end
  without streaming), or to the end of the last attempt.
- Recovery: the attempts sent after the spike, in bins of `BIN_S` by sent time. A bin is back
  to the pre-spike state when the share of its attempts that failed (refused or otherwise) is
  no higher than before the spike and its admitted attempts' TTFT p50 is within `TTFT_FACTOR`
  × the pre-spike p50. `recovery_s` is the start of the earliest bin from which every bin with
  attempts in it is back, less the spike's end (so the end of the last bin that was not back; 0
  when none was): requiring every later bin says the service *stays* back (one good bin in a
  lull between retries is not recovery), and binning by sent time charges a slow answer to the
  moment it was asked, not to when the queue let it out.
  A bin of a few requests is a small sample: the rule is for an arrival rate of several per bin.
- Memory: the target tree's RSS at the point's first host sample, its peak over the point, and
  the difference (`harness.telemetry.host`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.arrivals import spike_window
from harness.metrics.distribution import Distribution
from harness.metrics.requests import ended_at, ttft_s
from harness.samples import Sample
from harness.scenario.types import LoadPoint
from harness.summary.spike import SpikePhase, SpikeSummary
from harness.telemetry.store import Record

BIN_S = 0.5  # width of the bins recovery is judged on, s
TTFT_FACTOR = 1.5  # a bin's TTFT p50 within this × the pre-spike p50 is back to normal
User = list[Sample]  # one user request's attempts, in order


def spike_summary(samples: Sequence[Sample], point: LoadPoint, *, started_at: float,
                  warmup_end: float, load_end: float, retry_refused: int = 0,
                  records: Sequence[Record] = ()) -> SpikeSummary | None:
    """The `spike` record of `point` (None unless its kind is "spike"); `started_at` is when the
    load began (its arrivals' offsets count from it), `records` the point's telemetry."""
    if point.kind != "spike":
        return None
    first, last = spike_window(point)
    start, end = started_at + first, started_at + last
    users = group_users(samples)
    before = phase(samples, users, min(warmup_end, start), start)
    during = phase(samples, users, start, end)
    after = phase(samples, users, end, load_end, open_end=True)
    recovery, why = recovery_after(samples, before, end)
    rss_start, rss_peak = target_rss(records)
    return SpikeSummary(
        start_s=start, end_s=end, retry_refused=retry_refused, before=before, during=during,
        after=after, bin_s=BIN_S, recovery_s=recovery, not_recovered=why,
        rss_start_mb=rss_start, rss_peak_mb=rss_peak,
        rss_growth_mb=None if rss_start is None or rss_peak is None else rss_peak - rss_start)


def group_users(samples: Sequence[Sample]) -> list[User]:
    """The samples by user request (`request_id`), each one's attempts in order, the users in
    the order their first attempt was due."""
    by_id: dict[str, User] = {}
    for s in samples:
        by_id.setdefault(s.request_id, []).append(s)
    users = [sorted(u, key=lambda s: (s.attempt, s.sent_at))
             for u in by_id.values()]
    return sorted(users, key=lambda u: u[0].scheduled_at)


def user_wait_s(user: User) -> float:
    """First attempt due → the answer's first token (its end without one), or the last
    attempt's end."""
    final = user[-1]
    answer = final.first_token_at if final.ok and final.first_token_at is not None else None
    return (answer if answer is not None else ended_at(final)) - user[0].scheduled_at


def phase(samples: Sequence[Sample], users: Sequence[User], lo: float, hi: float,
          open_end: bool = False) -> SpikePhase:
    """Attempts sent and user requests due in [lo, hi) (`open_end`: and any later)."""
    def inside(t: float) -> bool:
        return lo <= t and (open_end or t < hi)

    sent = [s for s in samples if inside(s.sent_at)]
    mine = [u for u in users if inside(u[0].scheduled_at)]
    refused = sum(s.status == "refused" for s in sent)
    finals = [u[-1] for u in mine]
    answered = sum(f.ok for f in finals)
    gave_up = sum(f.status == "refused" for f in finals)
    attempts = [len(u) for u in mine]
    length = hi - lo
    return SpikePhase(
        start_s=lo, end_s=hi,
        offered_rps=len(mine) / length if length > 0 else None,
        sent_rps=len(sent) / length if length > 0 else None,
        sent=len(sent), refused=refused, refused_share=refused / len(sent) if sent else None,
        ttft_ms=admitted_ttft_ms(sent), users=len(mine), answered=answered, gave_up=gave_up,
        failed=len(mine) - answered - gave_up,
        attempts_mean=sum(attempts) / len(attempts) if attempts else None,
        attempts_max=max(attempts) if attempts else None,
        wait_ms=Distribution.of(1000 * user_wait_s(u) for u in mine))


def admitted_ttft_ms(sent: Sequence[Sample]) -> Distribution | None:
    return Distribution.of(1000 * v for s in sent if s.ok and (v := ttft_s(s)) is not None)


def recovery_after(samples: Sequence[Sample], before: SpikePhase,
                   end: float) -> tuple[float | None, str | None]:
    """(seconds from `end` to recovery, None) or (None, why it cannot be given): see the
    module docstring."""
    base = before.ttft_ms
    if base is None:
        return None, "no admitted request before the spike to compare with"
    pre = [s for s in samples if before.start_s <= s.sent_at < before.end_s]
    bar = failed_share(pre)
    later = sorted((s for s in samples if s.sent_at >= end), key=lambda s: s.sent_at)
    if not later:
        return None, "nothing was sent after the spike"
    bins: dict[int, list[Sample]] = {}
    for s in later:
        bins.setdefault(math.floor((s.sent_at - end) / BIN_S), []).append(s)
    last = max(bins)
    for k in sorted(bins, reverse=True):
        trouble = bin_trouble(bins[k], bar, base.p50)
        if trouble is None:
            continue
        if k == last:
            return None, (f"not back by the end of the load: attempts sent "
                          f"{k * BIN_S:g}-{(k + 1) * BIN_S:g} s after the spike had {trouble}")
        return (k + 1) * BIN_S, None  # every bin with attempts after the k-th is back
    return 0.0, None


def failed_share(sent: Sequence[Sample]) -> float:
    return sum(not s.ok for s in sent) / len(sent) if sent else 0.0


def bin_trouble(sent: Sequence[Sample], bar: float, base_p50_ms: float) -> str | None:
    """What keeps a bin from the pre-spike state, in words; None when it is back."""
    failed = sum(not s.ok for s in sent)
    if failed / len(sent) > bar:
        return f"{failed} of {len(sent)} refused or failed (before the spike: {bar:.0%})"
    ttft = admitted_ttft_ms(sent)
    if ttft is None:
        return f"no admitted request with a first token of {len(sent)}"
    if ttft.p50 > TTFT_FACTOR * base_p50_ms:
        return (f"a TTFT p50 of {ttft.p50:.0f} ms (before the spike: {base_p50_ms:.0f} ms, "
                f"limit {TTFT_FACTOR:g}×)")
    return None


def target_rss(records: Sequence[Record]) -> tuple[float | None, float | None]:
    """The target tree's RSS (MiB) at the first host sample of `records` and its peak; (None,
    None) without host telemetry."""
    values = [(float(t), float(v)) for r in records if r.get("kind") == "host"
              and isinstance(t := r.get("t"), (int, float))
              and isinstance(v := r.get("target_rss_mb"), (int, float))]
    if not values:
        return None, None
    values.sort()
    return values[0][1], max(v for _, v in values)
