"""The report's "Production behaviour" section: one table, target × experiment, in plain words.

Each row is one fault experiment the run's stored summary shows, for one target (and load point):

- **event loop**: the `/health` probe sent while the load ran (`probe` of the point): how long a
  health check waited, at the median and p99, and how many got no answer within the probe's
  timeout (counted at their wait, never dropped: censored);
- **target died**: a target declared dead during a point (`failure`): why, how long after the
  first failed request the harness noticed, how many requests failed, which points were skipped;
- **overload**: a point where the target refused requests (503, backpressure): the share refused
  and the TTFT of those admitted (and whether the clients retried, from the manifest); for an
  open-loop spike point (`spike`, `harness.metrics.spike`), whether it refused or not: the share
  refused and the admitted TTFT p50 / p99 during the spike vs before, what users waited (their
  retries included), the seconds until it was back to its pre-spike state, and the target's RSS
  growth;
- **shutdown**: a `[fault]` sigterm point (`fault`): streams in flight at the SIGTERM, how many
  completed vs were cut, the drain time (signal → exit), and requests refused after the signal;
- **timeouts**: a point where the client's timeouts fired (`[client]` connect / first-token /
  between-tokens, the scenario's `timeout_s`): how many requests, of how many;
- **disconnect**: a `[fault]` disconnect point (`fault`): how many streams their clients
  abandoned after how many tokens, how soon after the last one the target was idle again (0 in
  flight on its /metrics), and the tokens it generated that nobody read;
- **rolling deploy**: a `[fault]` rolling point (`fault.rolling`): its verdict sentence
  (`harness.verdict.rolling`); the variants' figures side by side are in their own section
  (`harness.report.rolling`).

A run with neither shows no section. Only what was measured is shown: a missing figure is "—".
"""

from __future__ import annotations

from harness.report.formatting import MISSING, esc, fmt_fraction, fmt_ms, fmt_rate
from harness.report.run_data import RunData
from harness.summary.fault import FaultSummary
from harness.summary.record import Distribution, PointSummary, TargetRun
from harness.summary.spike import SpikePhase, SpikeSummary
from harness.verdict.rolling import sentence

HEAD = ("<tr><th>target</th><th>experiment</th><th>load point</th><th>what a user saw</th>"
        "<th>what the harness measured</th></tr>")


def production_section(run: RunData) -> str:
    """The section's HTML, or "" when the run holds no fault experiment."""
    retries = _retries(run)
    rows = [row for p in run.points
            for row in (_event_loop(p), _overload(p, retries.get(p.target.split("@")[0])),
                        _timeouts(p), _shutdown(p), _disconnect(p), _rolling(p)) if row]
    targets = run.targets
    rows += [row for p in run.points if p.failure is not None
             for row in (_death(p, targets.get(p.target)),)]
    if not rows:
        return ""
    return ("<h2 id='production'>Production behaviour</h2><p class='muted'>Fault experiments "
            "of this run, one row per target × experiment × load point.</p>"
            f"<table class='production'>{HEAD}{''.join(rows)}</table>")


def _row(p: PointSummary, experiment: str, saw: str, measured: str) -> str:
    return (f"<tr><td>{esc(p.target)}</td><td>{esc(experiment)}</td><td>{esc(p.point)}</td>"
            f"<td>{saw}</td><td>{measured}</td></tr>")


def _event_loop(p: PointSummary) -> str:
    probe = p.probe
    if probe is None or not probe.sent:
        return ""
    lat = probe.latency_ms
    p50, p99 = (lat.p50, lat.p99) if lat is not None else (None, None)
    saw = f"a health check waited {fmt_ms(p50)} ms (median), {fmt_ms(p99)} ms (p99)"
    if probe.censored:
        saw += (f"; {probe.censored} of {probe.sent} got no answer within "
                f"{probe.timeout_ms / 1000:g} s")
    measured = (f"{probe.sent} probes, {probe.answered} answered 200, {probe.censored} "
                f"censored, {probe.missed_ticks} ticks missed")
    return _row(p, "event loop: /health under load", esc(saw), esc(measured))


def _death(p: PointSummary, info: TargetRun | None) -> str:
    failure = p.failure
    assert failure is not None
    first = failure.first_error_at_s
    after = (f"{failure.detected_at_s - first:.2f} s after the first failed request"
             if first is not None else "before any request failed")
    skipped = ", ".join(info.skipped) if info is not None and info.skipped else MISSING
    saw = f"the target stopped answering: {failure.reason}"
    measured = (f"noticed {after}; {failure.failed_requests} failed requests recorded; "
                f"points skipped: {skipped}")
    return _row(p, "target died", esc(saw), esc(measured))


def _overload(p: PointSummary, retries: int | None = None) -> str:
    if p.spike is not None:
        return _spike(p, p.spike)
    counts = p.requests
    if not counts.refused or not counts.total or p.fault is not None:
        return ""  # a fault's point: its refusals are the drain's (its own row)
    ttft = p.ttft_ms
    saw = (f"{counts.refused / counts.total:.0%} of requests were refused (503); those admitted "
           f"waited {fmt_ms(ttft.p50 if ttft else None)} ms for a first token (median), "
           f"{fmt_ms(ttft.p99 if ttft else None)} ms (p99)")
    measured = f"{counts.refused} refused, {counts.ok} ok of {counts.total} counted"
    if retries:
        measured += f"; clients retried each 503 up to {retries} times (each try counted)"
    return _row(p, "overload: backpressure", esc(saw), esc(measured))


def _p50_p99(dist: Distribution | None) -> str:
    return f"{fmt_ms(dist.p50 if dist else None)} / {fmt_ms(dist.p99 if dist else None)} ms"


def _spike(p: PointSummary, spike: SpikeSummary) -> str:
    """A spike point's row: refusals and admitted TTFT during the spike vs before, what users
    waited, recovery, memory growth (`harness.metrics.spike`)."""
    before, during = spike.before, spike.during
    rates = (during.offered_rps, before.offered_rps)
    factor = f" to {rates[0] / rates[1]:.1f}× the arrival rate" if rates[0] and rates[1] else ""
    clients = (f"clients retrying each 503 up to {spike.retry_refused} times"
               if spike.retry_refused else "clients that do not retry")
    recovered = (f"back to the pre-spike state {spike.recovery_s:g} s after the spike's end"
                 if spike.recovery_s is not None else f"not recovered: {spike.not_recovered}")
    saw = (f"during the spike {fmt_fraction(during.refused_share)} of requests were refused "
           f"(503; before it {fmt_fraction(before.refused_share)}); admitted TTFT p50 / p99 "
           f"{_p50_p99(during.ttft_ms)} during vs {_p50_p99(before.ttft_ms)} before; users "
           f"({clients}) waited {_p50_p99(during.wait_ms)} during vs "
           f"{_p50_p99(before.wait_ms)} before; {recovered}")
    growth = (f"target RSS +{spike.rss_growth_mb:,.1f} MiB ({spike.rss_start_mb:,.1f} → "
              f"{spike.rss_peak_mb:,.1f})" if spike.rss_growth_mb is not None
              and spike.rss_start_mb is not None and spike.rss_peak_mb is not None
              else "no host telemetry for the target's RSS")
    measured = (f"offered {fmt_rate(before.offered_rps)} → {fmt_rate(during.offered_rps)} → "
                f"{fmt_rate(spike.after.offered_rps)} req/s (before → spike → after), attempts "
                f"sent during the spike {fmt_rate(during.sent_rps)}/s; of {during.users} users "
                f"due in the spike {during.answered} got an answer, {during.gave_up} gave up, "
                f"{during.failed} failed otherwise, {_attempts(during)}; {growth}")
    return _row(p, f"overload: a spike{factor}", esc(saw), esc(measured))


def _attempts(phase: SpikePhase) -> str:
    if phase.attempts_mean is None:
        return "no attempts"
    return f"{phase.attempts_mean:.2f} attempts per user (most {phase.attempts_max})"


def _retries(run: RunData) -> dict[str, int]:
    """Series label → the clients' retry_refused, from the manifest's resolved targets (a
    label@driver series is its target's)."""
    resolved = run.scenario.resolved if run.scenario else None
    targets = resolved.targets if resolved else ()
    return {t.label: t.client.retry_refused for t in targets if t.client is not None}


def _timeouts(p: PointSummary) -> str:
    counts = p.requests
    if not counts.timeout:
        return ""
    saw = f"{counts.timeout} of {counts.total} requests hit a client timeout"
    measured = (f"{counts.timeout} timeout, {counts.ok} ok, {counts.conn_error} connection "
                "errors (the phase of each timeout is in its sample: extra.timeout)")
    return _row(p, "timeouts: a slow target", esc(saw), esc(measured))


def _shutdown(p: PointSummary) -> str:
    fault = p.fault
    if fault is None or fault.kind != "sigterm":
        return ""
    if fault.signal_at_s is None:
        return _row(p, "shutdown: SIGTERM mid-load", "the signal was never sent",
                    "the point ended before the fault's at_s")
    drain = f"{fault.drain_s:.2f} s" if fault.drain_s is not None else "did not exit in the point"
    saw = (f"of {fault.in_flight_at_signal} streams in flight at the SIGTERM, {fault.completed} "
           f"completed and {fault.cut} were cut; {fault.refused_after} of {fault.sent_after} "
           "requests sent afterwards were refused")
    measured = (f"drain (signal → process exit): {drain}; refused = 503 or connection refused; "
                "the target was not restarted")
    return _row(p, "shutdown: SIGTERM mid-load", esc(saw), esc(measured))


def _rolling(p: PointSummary) -> str:
    rolling = p.fault.rolling if p.fault is not None else None
    if rolling is None:
        return ""
    return _row(p, "rolling deploy behind a load balancer", esc(sentence(rolling)),
                "<a href='#rolling'>the Rolling deploy section</a>")


def _disconnect(p: PointSummary) -> str:
    fault = p.fault
    if fault is None or fault.kind != "disconnect":
        return ""
    saw = (f"{fault.abandoned} of {fault.requests} streams abandoned after "
           f"{fault.after_tokens} tokens; {_idle(fault)}")
    measured = f"{fault.completed} completed ok; {_wasted(fault)}"
    return _row(p, "disconnect: clients abandon streams", esc(saw), esc(measured))


def _idle(fault: FaultSummary) -> str:
    """When the target was idle again after the load, in words."""
    after_load = fault.in_flight_zero_after_load_s
    if after_load is not None:
        last = fault.in_flight_zero_after_s
        if last is None:
            return f"the server was idle again {after_load:.2f} s after the load's end"
        return (f"the server was idle again {last:.2f} s after the last one "
                f"({after_load:.2f} s after the load's end)")
    if fault.metrics_source is None:
        return "whether the server stopped is not known: in-flight requests not exported"
    if fault.in_flight_left is None:
        return "the server's /metrics did not answer after the load"
    return (f"the server still had {fault.in_flight_left:g} requests in flight "
            f"{fault.cleanup_wait_s or 0:g} s after the load's end")


def _wasted(fault: FaultSummary) -> str:
    if fault.generated_tokens is None:
        return (f"{fault.received_tokens} tokens read; tokens generated: not exported, so "
                "wasted tokens are not known")
    if fault.wasted_tokens is None:
        read = fault.received_tokens or 0
        return (f"the server counted {fault.generated_tokens} generated tokens, "
                f"{read - fault.generated_tokens} fewer than the clients read "
                f"({read}): its counter and the clients' token count disagree, "
                "so no waste can be shown")
    per = (f" ({fault.wasted_per_abandoned:.1f} per abandoned stream)"
           if fault.wasted_per_abandoned is not None else "")
    return (f"{fault.wasted_tokens} tokens generated that nobody read{per}: "
            f"{fault.generated_tokens} generated, {fault.received_tokens} read")
