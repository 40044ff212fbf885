"""The `spike` record of an open-loop spike point in summary.json: the load before, during and
after the spike, how long the target took to recover, and its memory growth
(`harness.metrics.spike`).

Every field is set (no defaults): `doc(...)` documents it for the schema and
docs/results.md."""

from __future__ import annotations

from dataclasses import dataclass

from harness.metrics.distribution import Distribution
from harness.records.typed_json import doc


@dataclass(frozen=True)
class SpikePhase:
    """One phase of a spike point. Attempts (what the server saw: each retry is one) count in
    the phase they were sent in; user requests (an arrival and its retries) in the phase their
    first attempt was due in."""

    start_s: float = doc("start of the phase, run clock, s")
    end_s: float = doc(
        "end of the phase, run clock, s (after: the end of the load; attempts sent later, "
        "retries of its last requests, count in it too)")
    offered_rps: float | None = doc(
        "user requests due in the phase per second (the arrival rate)")
    sent_rps: float | None = doc(
        "attempts sent per second, retries included: the load the server was offered")
    sent: int = doc("attempts sent in the phase")
    refused: int = doc("of those, refused with a 503")
    refused_share: float | None = doc("refused / sent (0..1)")
    ttft_ms: Distribution | None = doc(
        "TTFT of the admitted: ok attempts sent in the phase, first token − sent, ms")
    users: int = doc("user requests whose first attempt was due in the phase")
    answered: int = doc("of those, whose last attempt ended ok")
    gave_up: int = doc(
        "of those, whose last attempt was refused: no retry left (or none allowed)")
    failed: int = doc(
        "of those, whose last attempt failed otherwise (timeout, error, cut)")
    attempts_mean: float | None = doc("attempts per user request, mean")
    attempts_max: int | None = doc("attempts per user request, most")
    wait_ms: Distribution | None = doc(
        "what a user waited: its first attempt's due time → the first token of the attempt that "
        "succeeded (its end without streaming), or the end of its last attempt (a give-up), ms")


@dataclass(frozen=True)
class SpikeSummary:
    """A `spike` point's accounting: before / during / after the spike, recovery, memory."""

    start_s: float = doc("when the spike began, run clock, s")
    end_s: float = doc("when it ended, run clock, s")
    retry_refused: int = doc(
        "the clients' retries of a 503 (the target's effective [client] retry_refused; 0: they "
        "do not retry)")
    before: SpikePhase = doc("from the end of warm-up to the spike")
    during: SpikePhase = doc("the spike")
    after: SpikePhase = doc("from the spike's end to the end of the load")
    bin_s: float = doc("width of the bins recovery is judged on, s")
    recovery_s: float | None = doc(
        "spike end → the end of the last bin (of attempts by sent time) that was not back to the "
        "pre-spike state, after which every bin with attempts in it is: a share refused or "
        "failed no higher than before the spike, and a TTFT p50 of its admitted attempts within "
        "1.5× the pre-spike p50; 0 when every bin after the spike was back; null when the last "
        "one was not (see not_recovered)")
    not_recovered: str | None = doc(
        "why recovery_s is null (one line), else null")
    rss_start_mb: float | None = doc(
        "the target tree's RSS at the point's first host sample, MiB (null: no host telemetry)")
    rss_peak_mb: float | None = doc(
        "its peak RSS over the point, warm-up and drain included, MiB")
    rss_growth_mb: float | None = doc("rss_peak_mb − rss_start_mb, MiB")
