"""The verdict's vocabulary: its record types and how a level, an SLO and a number are written.

    Sentence("ranking", "fastapi_batching holds ...", (Link("c=8 row", "target-4-c8"),))
    level_text("concurrency", 8)              # '8 requests at once'
    slo_text({"ttft_ms": 500, "tpot_ms": 50}, 0.9)
    # 'first token ≤ 500 ms and ≥ 20 tok/s each, for 90% of requests'

Texts are plain (not HTML): the report escapes them (`harness.report.verdict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.summary.record import PointSummary
from harness.verdict.anchors import point_anchor, section_anchor, target_anchor

Kind = Literal["ranking", "reason", "caveat"]


@dataclass(frozen=True)
class Link:
    """Where the evidence of a sentence is on the report page: a label and an element id."""

    label: str
    anchor: str


@dataclass(frozen=True)
class Sentence:
    """One statement of the verdict with the numbers it rests on and links to them."""

    kind: Kind
    text: str
    links: tuple[Link, ...]


@dataclass(frozen=True)
class Verdict:
    """The verdict of a run: ranking, the reason each pattern loses, caveats (in that order)."""

    sentences: tuple[Sentence, ...]

    def of_kind(self, kind: Kind) -> tuple[Sentence, ...]:
        return tuple(s for s in self.sentences if s.kind == kind)


def level_text(axis: str, level: float) -> str:
    """A load level in words: '8 requests at once' or '2.5 req/s'."""
    if axis == "concurrency":
        return f"{level:g} request at once" if level == 1 else f"{level:g} requests at once"
    return f"{level:g} req/s"


def short_level(point: PointSummary) -> str:
    """A point's level as the tables write it: 'c=8' or '2.5 req/s'."""
    if point.load.concurrency is not None:
        return f"c={point.load.concurrency}"
    if point.load.rate_rps is not None:
        return f"{point.load.rate_rps:g} req/s"
    return point.point


def axis_of(point: PointSummary) -> str:
    return "concurrency" if point.load.concurrency is not None else "rate_rps"


def slo_text(slo: Mapping[str, float], share: float) -> str:
    """The SLO in words, e.g. 'first token ≤ 500 ms and ≥ 20 tok/s each, for 90% of requests'
    (a request meets a limit at it: `harness.metrics.requests.meets_slo`)."""
    parts = []
    for key, limit in slo.items():
        if key == "ttft_ms":
            parts.append(f"first token ≤ {limit:g} ms")
        elif key == "tpot_ms":
            parts.append(f"≥ {1000 / limit:.3g} tok/s each" if limit > 0 else "tpot_ms ≤ 0")
        elif key == "e2e_ms":
            parts.append(f"whole reply ≤ {limit:g} ms")
        else:
            parts.append(f"{key} ≤ {limit:g}")
    return f"{' and '.join(parts)}, for {pct(share)} of requests"


def pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


def share_text(fraction: float | None, share: float) -> str:
    """A within-SLO share written so it never reads as the target share it missed or met:
    0.896 against 0.9 is '89.6%', not '90%'."""
    if fraction is None:
        return "—"
    for digits in (0, 1, 2):
        text = f"{fraction * 100:.{digits}f}"
        if (float(text) / 100 >= share) == (fraction >= share):
            return f"{text}%"
    return f"{fraction * 100:.3f}%"


def ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:,.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×"


def share_percentile(share: float) -> str:
    """The reported percentile that the share of requests must fall under: 0.9 → 'p90'."""
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95)):
        if share <= q:
            return name
    return "p99"


def target_id(order: Sequence[str], target: str) -> str:
    """The report's id of `target`'s section (`order`: the report's series labels)."""
    return target_anchor(order, target)


def point_id(order: Sequence[str], target: str, point: str) -> str:
    """The report's id of `point`'s row in `target`'s table."""
    return point_anchor(order, target, point)


def section_id(name: str) -> str:
    """The report's id of a page section (results, manifest, ...)."""
    return section_anchor(name)
