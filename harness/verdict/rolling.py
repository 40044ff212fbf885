"""One plain sentence per rolling-deploy variant (`fault.rolling` of a point), from its record:

    variant_name(r)   # 'graceful drain with readiness gating, clients retrying 503'
    sentence(r)       # 'graceful drain with readiness gating: 0 truncated of 14 streams in
                      #  flight across 2 replacements; 0 requests failed; ...'

Texts are plain (not HTML): the report escapes them (`harness.report.rolling`). No number, no
sentence: a deploy that never began says so instead.
"""

from __future__ import annotations

from harness.metrics.distribution import Distribution
from harness.summary.rolling import Failures, RollingSummary

KINDS = {"draining_503": "503 from a draining replica",
         "balancer_503": "503 from the balancer (a replica refused the connection)",
         "bad_gateway": "502 (a replica reset the connection)", "truncated": "truncated",
         "aborted": "aborted by an error event", "stalled": "stalled until the client's timeout",
         "refused": "connection refused", "reset": "reset", "other": "other"}


def variant_name(r: RollingSummary) -> str:
    """What the variant changes: the stop, the gating, the clients' retries."""
    if r.stop == "kill":
        name = "no drain (SIGKILL)" + (", taken out of rotation first" if r.gate else "")
    elif r.gate:
        name = "graceful drain with readiness gating"
    else:
        name = "graceful drain without readiness gating"
    if not r.surge:
        name += ", old replica stopped before its replacement started"
    if r.retry_refused:
        name += f", clients retrying 503 (up to {r.retry_refused}×, exponential back-off)"
    return name


def failed_kinds(f: Failures) -> str:
    """'3 503 from a draining replica, 2 truncated' (the kinds that happened), or 'none'."""
    parts = [f"{n} {text}" for key, text in KINDS.items() if (n := getattr(f, key))]
    return ", ".join(parts) or "none"


def _p99(d: Distribution | None) -> str:
    return "—" if d is None else f"{d.p99:,.0f} ms"


def sentence(r: RollingSummary, label: str | None = None) -> str:
    """The variant's verdict, e.g. 'fastapi_batching, graceful drain with readiness gating: 0
    truncated of 14 streams in flight across 2 replacements; ...'."""
    name = f"{label}, {variant_name(r)}" if label else variant_name(r)
    if r.deploy_start_at_s is None:
        return f"{name}: the deploy never began (the load ended before fault.at_s)"
    done = sum(x.error is None for x in r.replacements)
    plural = "s" if done != 1 else ""
    text = (f"{name}: {r.truncated} truncated of {r.in_flight} streams in flight across "
            f"{done} replacement{plural}")
    failed = r.failed.total
    text += (f"; {r.failed_requests} requests failed" if failed == 0 else
             f"; {r.failed_requests} requests failed for their users ({failed} failed "
             f"attempts: {failed_kinds(r.failed)})")
    if r.retried:
        text += f", {r.retried} resent"
    text += (f"; TTFT p99 {_p99(r.deploy.ttft_ms)} during the deploy vs "
             f"{_p99(r.steady.ttft_ms)} before it; deploy {r.deploy_s or 0:.1f} s")
    if not r.completed:
        text += f" — incomplete: {r.error or 'not every replica was replaced'}"
    if not r.load_covered:
        text += " — the load ended before the deploy did (raise load.duration_s)"
    return text + "."
