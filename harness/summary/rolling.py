"""The `fault.rolling` record of a load point in summary.json: a rolling deploy behind a load
balancer (`[fault] kind = "rolling"`, `harness.run.rolling`), each replica replaced in turn,
and what the clients saw (`harness.metrics.rolling`)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.metrics.distribution import Distribution
from harness.records.typed_json import doc


@dataclass(frozen=True)
class Replacement:
    """One replica replaced: the new one started and found ready, the old one taken out of
    rotation and stopped. Times are run-clock seconds (null: it did not happen)."""

    index: int = doc("0 for the first replacement")
    old: str = doc("the balancer's server name of the replica replaced (r0, r1, ...)")
    new: str | None = doc("the server name of its replacement (null: it did not start)")
    old_pid: int | None = doc("the replaced replica's process id")
    new_pid: int | None = doc("the new replica's process id")
    started_at_s: float = doc("when the new replica's process was started")
    ready_at_s: float | None = doc("when the new replica answered /health 200", None)
    up_at_s: float | None = doc("when the balancer had it in rotation (UP)", None)
    out_of_rotation_at_s: float | None = doc(
        "when the balancer stopped sending the old replica new requests: set to drain (gate), "
        "or marked DOWN by its own health check (no gate; null: not before it was removed)",
        None)
    signal: str | None = doc("SIGTERM (drain) or SIGKILL (kill); null: the old replica had "
                             "already exited, or the deploy stopped before", None)
    signal_at_s: float | None = doc("when the signal was sent", None)
    exit_at_s: float | None = doc("when the old replica's process exited", None)
    exit_code: int | None = doc("its exit code (negative: the signal that ended it)", None)
    drain_s: float | None = doc("signal → exit, s", None)
    in_flight_at_signal: int | None = doc(
        "requests the old replica was serving when it was signalled (the balancer's current "
        "sessions of that server)", None)
    truncated: int = doc("streams cut (truncated) from this signal until the next one", 0)
    error: str | None = doc("why this replacement did not complete (null: it did)", None)


@dataclass(frozen=True)
class Failures:
    """Failed attempts by kind, as the client saw them through the balancer."""

    draining_503: int = doc("503 from a draining replica (its `shutting_down` answer)", 0)
    balancer_503: int = doc("503 from the balancer itself: the replica it picked refused the "
                            "connection (`retries 0`), or no replica was UP", 0)
    bad_gateway: int = doc("502/504 from the balancer: the replica reset or closed the "
                           "connection before its answer", 0)
    truncated: int = doc("streams cut before [DONE]: the replica went away mid-answer", 0)
    aborted: int = doc("streams the replica ended with an error event (its shutdown aborted "
                       "the request, e.g. vLLM's default)", 0)
    stalled: int = doc("answers that stopped and hung until the client's own timeout", 0)
    refused: int = doc("connections the client could not open (to the balancer)", 0)
    reset: int = doc("other connection errors at the client (reset, closed)", 0)
    other: int = doc("every other failure (timeouts, other HTTP errors)", 0)

    @property
    def total(self) -> int:
        return (self.draining_503 + self.balancer_503 + self.bad_gateway + self.truncated
                + self.aborted + self.stalled + self.refused + self.reset + self.other)


@dataclass(frozen=True)
class Window:
    """The requests of one window (by when they were due: a retried request's latency counts
    every wait since, as its user waited)."""

    start_s: float | None = doc("window start, run clock, s")
    end_s: float | None = doc("window end, run clock, s")
    requests: int = doc("user requests due in the window (retries are the same request)")
    ok: int = doc("of those, answered in full")
    ttft_ms: Distribution | None = doc("due → first token of the answered, ms")
    e2e_ms: Distribution | None = doc("due → last token of the answered, ms")


@dataclass(frozen=True)
class RollingSummary:
    """A rolling deploy during the point: its steps, and the load's requests before and during
    it."""

    replicas: int = doc("replicas behind the balancer (fault.replicas)")
    stop: str = doc("drain: each old replica got SIGTERM; kill: SIGKILL")
    gate: bool = doc("whether each old replica was taken out of rotation before its signal")
    retry_refused: int = doc("how many times a client resent a refused (503) request")
    check_interval_s: float = doc("the balancer's /health check period, s")
    fall: int = doc("failed checks in a row that mark a replica DOWN")
    deploy_start_at_s: float | None = doc("the first replacement began, run clock, s (null: "
                                          "the deploy never began)")
    deploy_end_at_s: float | None = doc("the last replacement ended, run clock, s")
    deploy_s: float | None = doc("deploy_end_at_s − deploy_start_at_s")
    completed: bool = doc("every replica was replaced")
    error: str | None = doc("why the deploy stopped early (null: it did not)")
    load_covered: bool = doc("the load went on until the deploy ended (false: load.duration_s "
                             "ended it first, so the deploy window is partial)")
    replacements: tuple[Replacement, ...] = doc("each replacement, in order")
    in_flight: int = doc("requests the old replicas were serving at their signals, summed")
    truncated: int = doc("answers cut during the deploy and after it: begun (HTTP 200) and "
                         "not completed: truncated, aborted by an error event, or stalled "
                         "until the client's timeout")
    failed: Failures = doc("failed attempts by kind, during the deploy and after it")
    failed_requests: int = doc("user requests whose last attempt failed, during the deploy "
                               "and after it")
    retried: int = doc("attempts that were a client's resend of a refused request")
    failed_steady: int = doc("failed attempts in the steady window before the deploy")
    steady: Window = doc("warm-up end → deploy start")
    deploy: Window = doc("deploy start → deploy end")
    surge: bool = doc("true: each new replica started before its old one was stopped "
                      "(maxSurge 1); false: after (maxUnavailable 1)", True)
