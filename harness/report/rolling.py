"""The report's "Rolling deploy" section: one row per variant (a target's point with a
`fault.rolling` record), then one verdict sentence per variant (`harness.verdict.rolling`).

Per variant: the replacements done, the requests the old replicas were serving at their
signals, the streams cut, failed attempts by kind (`harness.summary.rolling.Failures`), the
resends, TTFT and E2E p50 / p99 in the steady window before the deploy against the deploy
window, the deploy's duration, and per replacement the requests the old replica served at its
signal, the streams cut from then on, its drain (signal → exit) and its endpoint removal lag
(signal → out of the balancer's rotation; ≤ 0 when gated first).
"""

from __future__ import annotations

from harness.metrics.distribution import Distribution
from harness.report.formatting import MISSING, esc
from harness.report.run_data import RunData
from harness.summary.record import PointSummary
from harness.summary.rolling import Replacement, RollingSummary
from harness.verdict.rolling import failed_kinds, sentence, variant_name

HEAD = ("<tr><th>target</th><th>variant</th><th>replacements</th><th>in flight at the signals"
        "</th><th>truncated</th><th>failed attempts by kind</th><th>resent</th>"
        "<th>TTFT p50 / p99 ms<br>steady → deploy</th><th>E2E p50 / p99 ms<br>steady → deploy"
        "</th><th>deploy s</th><th>per replacement: in flight, cut, drain (signal → exit), "
        "out of rotation (from the signal)</th></tr>")


def rolling_points(run: RunData) -> list[tuple[PointSummary, RollingSummary]]:
    return [(p, p.fault.rolling) for p in run.points
            if p.fault is not None and p.fault.rolling is not None]


def rolling_section(run: RunData) -> str:
    """The section's HTML, or "" when the run holds no rolling deploy."""
    points = rolling_points(run)
    if not points:
        return ""
    rows = "".join(_row(p, r) for p, r in points)
    sentences = "".join(f"<li>{esc(sentence(r, p.target))}</li>" for p, r in points)
    return ("<h2 id='rolling'>Rolling deploy</h2><p class='muted'>Each replica behind the "
            "balancer (HAProxy) replaced in turn under the same load: new one started and "
            "ready, old one out of rotation (with gating), stopped, its exit awaited. Steady = "
            "end of warm-up → first replacement; deploy = first replacement → last one's end. "
            "Latency counts from when the request was due, so a client's resends are in it."
            f"</p><table class='production'>{HEAD}{rows}</table><ul>{sentences}</ul>")


def _pair(d: Distribution | None) -> str:
    return MISSING if d is None else f"{d.p50:,.0f} / {d.p99:,.0f}"


def _steps(reps: tuple[Replacement, ...]) -> str:
    out = []
    for r in reps:
        drain = f"{r.drain_s:.2f} s" if r.drain_s is not None else MISSING
        lag = (f"{r.out_of_rotation_at_s - r.signal_at_s:+.2f} s"
               if r.out_of_rotation_at_s is not None and r.signal_at_s is not None else MISSING)
        flight = r.in_flight_at_signal if r.in_flight_at_signal is not None else MISSING
        out.append(f"{r.old}: {flight}, {r.truncated}, {drain}, {lag}"
                   + (f" ({r.error})" if r.error else ""))
    return "; ".join(out) or MISSING


def _row(p: PointSummary, r: RollingSummary) -> str:
    done = sum(x.error is None for x in r.replacements)
    cells = [p.target, variant_name(r), f"{done} of {r.replicas}", str(r.in_flight),
             str(r.truncated), failed_kinds(r.failed), str(r.retried),
             f"{_pair(r.steady.ttft_ms)} → {_pair(r.deploy.ttft_ms)}",
             f"{_pair(r.steady.e2e_ms)} → {_pair(r.deploy.e2e_ms)}",
             f"{r.deploy_s:.1f}" if r.deploy_s is not None else MISSING, _steps(r.replacements)]
    return "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"
