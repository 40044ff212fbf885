"""The verdict of a run, computed from its summary: which pattern holds the most load within the
SLO, by how much, why each other one loses, and what to keep in mind when reading it.

    v = verdict(read_summary(path), manifest, order=["flask_threads", "fastapi_batching"])
    for s in v.sentences: print(s.kind, s.text, [l.anchor for l in s.links])

Capacity under the SLO is the capacity search's interval (`summary.capacity`, kind =
"capacity") or, for a plain sweep, the highest level that passes with confidence below the
first that does not (`harness.run.capacity.sweep_interval`): "≥ 8, not measured above",
"4 (8 fails)". A target that died is never ranked: its last level is no capacity. Where the two
best patterns hold the same levels (a sweep that never reached where they differ), the verdict
states their measured ratio at the highest load both ran, with its interval (`_separation`).
`order` is the report's target order, so each `Link.anchor` is the id the report gives that
table, row or section (`harness.verdict.anchors`). Every sentence carries its numbers; a fact
the data lacks gives no sentence. docs/capacity.md says how each sentence is derived. Pure:
nothing here reads files or prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.run.capacity import judge, level_of, passes, sweep_interval
from harness.run.manifest import Manifest
from harness.summary.record import CapacityLevel, PointSummary, RunSummary
from harness.verdict.causes import causes, slo_breach
from harness.verdict.caveats import caveats
from harness.verdict.separation import separation
from harness.verdict.text import (
    Link,
    Sentence,
    Verdict,
    level_text,
    point_id,
    share_text,
    slo_text,
    target_id,
)


@dataclass(frozen=True)
class Standing:
    """A target's capacity interval, with the axis and why the search ended; `died`: the point
    and reason when the target died (then it is not ranked)."""

    target: str
    axis: str
    last_pass: CapacityLevel | None
    first_fail: CapacityLevel | None
    stopped: str
    measured: int
    share: float
    died: tuple[str, str] | None = None

    @property
    def key(self) -> tuple[float, float, float]:
        """Rank by the last passing level, then the first failing one, then the goodput there."""
        low = self.last_pass.level if self.last_pass else 0.0
        good = (self.last_pass.goodput_req_s or 0.0) if self.last_pass else 0.0
        return (low, self.first_fail.level if self.first_fail else float("inf"), good)

    def text(self) -> str:
        """'6 requests at once (8 fails)', '≥ 8 requests at once, not measured above', ..."""
        lp, ff = self.last_pass, self.first_fail
        if lp is None and ff is not None and ff.judged == "unsure":
            return (f"not shown at any level measured ({level_text(self.axis, ff.level)}: "
                    f"{share_text(ff.good_fraction, self.share)} within, too few requests to "
                    "show the share with confidence)")
        if lp is None:
            return f"below {level_text(self.axis, ff.level)} ({_word(ff)} there)" if ff else "—"
        held = (f"{level_text(self.axis, lp.level)} ({share_text(lp.good_fraction, self.share)} "
                "within the SLO" + (f", goodput {lp.goodput_req_s:.2f} req/s)"
                                    if lp.goodput_req_s is not None else ")"))
        if ff is not None:
            return (f"{held}; {ff.level:g} {_word(ff)} "
                    f"({share_text(ff.good_fraction, self.share)} within)")
        why = {"budget": "the search's time budget ran out",
               "unjudged": "the next level could not be judged"}.get(self.stopped,
                                                                     "not measured above")
        return f"≥ {held}, {why}"


def _word(level: CapacityLevel) -> str:
    return {"unsure": "is unsure", "unjudged": "could not be judged"}.get(level.judged or "",
                                                                          "fails")


def verdict(summary: RunSummary, manifest: Manifest | None, order: Sequence[str]) -> Verdict:
    """The run's verdict (see the module docstring); `order`: the report's series labels;
    `manifest`: the run's (None when it has none: no caveat that needs it)."""
    order = list(order)
    everyone = _standings(summary, order)
    standings = [s for s in everyone if s.died is None]
    sentences = _ranking(summary, standings, order)
    if len(standings) > 1 and _ratio(standings[0], standings[1], order) is None:
        sentences += separation(summary, standings, order)  # no ratio sets the two best apart
    sentences += _deaths(everyone, order)
    sentences += _reasons(summary, standings, order)
    sentences += caveats(summary, manifest, order)
    return Verdict(tuple(sentences))


def _standings(summary: RunSummary, order: list[str]) -> list[Standing]:
    out = []
    for target in order:
        points = [p for p in summary.points if p.target == target]
        info = summary.targets.get(target)
        died = ((info.failed_point or "its first point", info.error or "no reason recorded")
                if info is not None and info.status == "failed" and points else None)
        cap = summary.capacity.get(target)
        if cap is not None and cap.levels:
            out.append(Standing(target, cap.axis, cap.last_pass, cap.first_fail, cap.stopped,
                                len(cap.levels), summary.slo_share, died))
            continue
        last_pass, first_fail, count = sweep_interval(points, summary.slo_share)
        if count and points:
            axis = "concurrency" if points[0].load.concurrency is not None else "rate_rps"
            out.append(Standing(target, axis, last_pass, first_fail, "sweep", count,
                                summary.slo_share, died))
    return sorted(out, key=lambda s: s.key, reverse=True)


def _slo(summary: RunSummary) -> dict[str, float]:
    for point in summary.points:
        if point.goodput is not None:
            return dict(point.goodput.slo)
    return {}


def _ranking(summary: RunSummary, standings: list[Standing], order: list[str]
             ) -> list[Sentence]:
    if not standings:
        return []
    slo = slo_text(_slo(summary), summary.slo_share)
    ranked = "; ".join(f"{i}. {s.target}: {s.text()}" for i, s in enumerate(standings, 1))
    links = tuple(Link(s.target, target_id(order, s.target)) for s in standings)
    out = [Sentence("ranking", f"Capacity under the SLO ({slo}): {ranked}.", links)]
    ratios = [_ratio(standings[0], other, order) for other in standings[1:]]
    return out + [s for s in ratios if s is not None]


def _ratio(best: Standing, other: Standing, order: list[str]) -> Sentence | None:
    """'A holds more than N× the load of B': A holds at least its last pass, B less than its
    first fail — only a confident one (an unsure or unjudged level bounds nothing); None when
    that is no ratio above 1."""
    if best.last_pass is None or other.first_fail is None or other.axis != best.axis \
            or other.first_fail.judged not in (None, "fail"):
        return None
    low = best.last_pass.level / other.first_fail.level
    if low <= 1:
        return None  # their intervals overlap: no ratio is supported
    return Sentence("ranking", (
        f"{best.target} holds more than {low:.1f}× the load of {other.target} within the SLO "
        f"({best.last_pass.level:g} passes; {other.target} {_word(other.first_fail)} at "
        f"{other.first_fail.level:g})."),
        (Link(best.target, target_id(order, best.target)),
         Link(other.target, target_id(order, other.target))))


def _deaths(standings: list[Standing], order: list[str]) -> list[Sentence]:
    """A sentence per target that died: where, why, and that it is not ranked."""
    out = []
    for s in standings:
        if s.died is None:
            continue
        point, reason = s.died
        last = reason.strip().splitlines()[-1][:200] if reason.strip() else "no reason"
        out.append(Sentence("ranking", (
            f"{s.target} died at {point} ({last}) and is not ranked: the levels it ran before "
            "are measured, but none of them is its capacity."),
            (Link(s.target, target_id(order, s.target)),)))
    return out


def _reasons(summary: RunSummary, standings: list[Standing], order: list[str]
             ) -> list[Sentence]:
    """Why each target below the first one loses, from the point that made its level fail."""
    out: list[Sentence] = []
    for standing in standings[1:] if len(standings) > 1 else standings:
        if standing.first_fail is None:
            continue
        points = [p for p in summary.points if p.target == standing.target]
        failing = (_clear_fail_above(points, standing.first_fail, summary.slo_share)
                   if standing.stopped == "sweep" and standing.first_fail.judged == "unsure"
                   else None) or _failing_point(points, standing.first_fail, summary.slo_share)
        if failing is None:
            continue
        base = min(points, key=lambda p: level_of(p) or 0.0)
        link = (Link(f"{standing.target} {failing.point}",
                     point_id(order, standing.target, failing.point)),)
        texts = [slo_breach(standing.target, failing, summary.slo_share)]
        texts += causes(standing.target, failing, base)
        out += [Sentence("reason", t, link) for t in texts if t]
    return out


def _clear_fail_above(points: list[PointSummary], level: CapacityLevel,
                      share: float) -> PointSummary | None:
    """In a sweep whose first level short of a pass was only unsure (too few requests: the
    ranking says so), the lowest point above it that fails with confidence: what the load did
    to the target, a better reason than how few requests one short point held."""
    above = sorted((p for p in points if (level_of(p) or 0.0) > level.level
                    and judge(p, share).judged == "fail"), key=lambda p: level_of(p) or 0.0)
    return above[0] if above else None


def _failing_point(points: list[PointSummary], level: CapacityLevel,
                   share: float) -> PointSummary | None:
    """The point behind a failing level: of its repeats, the first that does not pass (the one
    the ranking read), else its first."""
    named = [p for p in points if p.point == level.point]
    return next((p for p in named if not passes(p, share)), named[0] if named else None)
