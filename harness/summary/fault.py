"""The `fault` record of a load point in summary.json: what an injected fault did
(`harness.run.fault` for sigterm and disconnect, `harness.run.rolling` for a rolling deploy;
the scenario's `[fault]` table). One record for every kind: the fields of the others are null
(a rolling deploy's are in its own `rolling` record)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.records.typed_json import doc
from harness.summary.rolling import RollingSummary


@dataclass(frozen=True)
class FaultSummary:
    """A fault injected during the point: for "sigterm", the rolling restart's accounting; for
    "disconnect", the abandoned streams and how the target cleaned up after the load."""

    kind: str = doc("the scenario's fault.kind: sigterm, disconnect, rolling")
    completed: int = doc("sigterm: of those in flight at the signal, how many ended ok; "
                          "disconnect, rolling: requests of the point that ended ok")
    signal_at_s: float | None = doc("sigterm: when SIGTERM was sent, run clock, s (null: never "
                                     "sent)", None)
    exit_at_s: float | None = doc("sigterm: when the target's process exited, run clock, s "
                                   "(null: it had not exited when the point ended)", None)
    drain_s: float | None = doc("sigterm: signal → process exit, s", None)
    in_flight_at_signal: int | None = doc("sigterm: requests sent and not ended when the "
                                           "signal was sent", None)
    cut: int | None = doc("sigterm: of those in flight, how many were truncated or failed",
                           None)
    sent_after: int | None = doc("sigterm: requests sent after the signal", None)
    refused_after: int | None = doc("sigterm: of those sent after, how many were refused (503) "
                                     "or found no server (connection refused)", None)
    after_tokens: int | None = doc("disconnect: token chunks a chosen stream read before its "
                                    "client closed it (fault.after_tokens)", None)
    requests: int | None = doc("disconnect: requests of the point, warm-up included", None)
    abandoned: int | None = doc("disconnect: of those, streams their client closed", None)
    last_abandon_at_s: float | None = doc("disconnect: when the last stream was closed, run "
                                           "clock, s (null: none was)", None)
    load_end_at_s: float | None = doc("disconnect: when the point's last request ended on "
                                       "the client, run clock, s", None)
    cleanup_wait_s: float | None = doc("disconnect: how long after the load the target's "
                                        "/metrics was polled at most (every 50 ms), s", None)
    metrics_source: str | None = doc("disconnect: whose /metrics names were read: "
                                      "patternbench, vllm, llamacpp (null: none exported)", None)
    in_flight_zero_at_s: float | None = doc(
        "disconnect: when /metrics first read 0 requests in flight after the load, run clock, "
        "s (null: not within cleanup_wait_s, or not exported)", None)
    in_flight_zero_after_s: float | None = doc("disconnect: last abandon → in_flight_zero_at_s"
                                                ", s", None)
    in_flight_zero_after_load_s: float | None = doc("disconnect: load end → "
                                                     "in_flight_zero_at_s, s", None)
    in_flight_left: float | None = doc("disconnect: requests in flight at the last reading (0 "
                                        "once idle; what was left at the bound)", None)
    generated_tokens: int | None = doc(
        "disconnect: the server's generated-token counter (patternbench_generated_tokens_total"
        ", vllm:generation_tokens_total; a gateway's upstream added) once idle minus before "
        "the load (null: not exported)", None)
    received_tokens: int | None = doc("disconnect: output tokens the client read, every "
                                       "request of the point (abandoned ones included)", None)
    wasted_tokens: int | None = doc("disconnect: generated − received: tokens nobody read "
                                     "(null: no counter, or one that counts fewer tokens than "
                                     "were read)", None)
    wasted_per_abandoned: float | None = doc("disconnect: wasted_tokens / abandoned", None)
    rolling: RollingSummary | None = doc("rolling: the deploy's steps and what the clients saw "
                                         "(`harness.summary.rolling`)", None)
