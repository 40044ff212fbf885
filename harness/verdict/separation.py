"""When the capacity ranking cannot separate the two best patterns by a ratio (both pass every level
the run measured, or fail at the same one, or the second's levels were too short to show the
share either way), the verdict still answers which to choose: their measured ratio at the
highest load both ran, output tokens/s and TTFT p50, each with its 95% interval (both sides of
one run: the in-run interval of `harness.metrics.measured`).

    "fastapi_batching and flask_threads both hold ≥ 8 requests at once in this run; at c=8
     fastapi_batching delivered 3.8× the output tokens/s of flask_threads (760 vs 199 tok/s,
     95% interval 3.3–4.4×), with TTFT p50 29 vs 236 ms (0.12×, 0.10–0.15×)."
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from harness.metrics.measured import change_between, measure
from harness.run.capacity import level_of
from harness.summary.record import CapacityLevel, PointSummary, RunSummary
from harness.verdict.text import Link, Sentence, level_text, ms, point_id, short_level


class Ranked(Protocol):
    """What this module reads of a ranking's standing (`harness.verdict.ranking.Standing`)."""

    @property
    def target(self) -> str: ...
    @property
    def axis(self) -> str: ...
    @property
    def last_pass(self) -> CapacityLevel | None: ...
    @property
    def first_fail(self) -> CapacityLevel | None: ...


def separation(summary: RunSummary, standings: Sequence[Ranked],
               order: Sequence[str]) -> list[Sentence]:
    """The ratio sentence for the two best standings (the ranking calls it when no capacity
    ratio sets them apart: the same interval, or none the other's levels could show)."""
    if len(standings) < 2:
        return []
    a, b = standings[0], standings[1]
    if a.axis != b.axis:
        return []
    points_a, points_b = _live(summary, a.target), _live(summary, b.target)
    common = set(points_a) & set(points_b)
    if not common:
        return []
    level = max(common)
    pa, pb = points_a[level], points_b[level]
    tok = _ratio(pa, pb, "throughput", "output_tok_s")
    ttft = _ratio(pa, pb, "ttft_ms", "p50")
    if tok is None or ttft is None:
        return []
    (tok_a, tok_b, tok_r, tok_ci), (t_a, t_b, t_r, t_ci) = tok, ttft
    if tok_r < 1:  # name first the one that delivered more
        return separation(summary, [b, a], order)
    held = (f"{a.target} and {b.target} both hold {_held(a)} in this run" if _bounds(a)
            == _bounds(b) else f"{a.target} holds {_held(a)} and {b.target} {_held(b)}")
    where = short_level(pa[0])
    text = (f"{held}; at {where} {a.target} "
            f"delivered {tok_r:.2f}× the output tokens/s of {b.target} ({tok_a:,.0f} vs "
            f"{tok_b:,.0f} tok/s{_ci(tok_ci)}), with TTFT p50 {ms(t_a)} vs {ms(t_b)} "
            f"({t_r:.2f}×{_ci(t_ci, first=False)}).")
    links = (Link(f"{a.target} {where}", point_id(order, a.target, pa[0].point)),
             Link(f"{b.target} {where}", point_id(order, b.target, pb[0].point)))
    return [Sentence("ranking", text, links)]


def _bounds(s: Ranked) -> tuple[float | None, float | None]:
    return (s.last_pass.level if s.last_pass else None,
            s.first_fail.level if s.first_fail else None)


def _held(s: Ranked) -> str:
    if s.last_pass is None:
        return "no level shown within the SLO with confidence"
    bound = "≥ " if s.first_fail is None else ""
    return f"{bound}{level_text(s.axis, s.last_pass.level)}"


def _live(summary: RunSummary, target: str) -> dict[float, list[PointSummary]]:
    """The target's points by level, without those of a failing point (the target died)."""
    out: dict[float, list[PointSummary]] = {}
    for p in summary.points:
        level = level_of(p)
        if p.target == target and level is not None and p.failure is None:
            out.setdefault(level, []).append(p)
    return out


def _ratio(pa: list[PointSummary], pb: list[PointSummary], field: str,
           sub: str) -> tuple[float, float, float, tuple[float, float] | None] | None:
    """(a's value, b's, a / b, its 95% interval) at one level of one run; None without values."""
    a, b = measure(pa, field, sub), measure(pb, field, sub)
    if a.value is None or b.value is None or not b.value:
        return None
    change, _ = change_between(b, a, same_run=True)
    ci = (change.lo, change.hi) if change is not None and change.lo is not None \
        and change.hi is not None else None
    return a.value, b.value, a.value / b.value, ci


def _ci(ci: tuple[float, float] | None, first: bool = True) -> str:
    if ci is None:
        return ", no interval" if first else "; no interval"
    return f"{', 95% interval ' if first else ', '}{ci[0]:.2f}–{ci[1]:.2f}×"
