"""The verdict's caveats: what to keep in mind before trusting its ranking, each with its count.

- a target that failed to start (not ranked; one that died later is said by the ranking), an
  interrupted run;
- a sweep whose levels pass above one that does not (noise, or a warm-up effect: re-measure);
- driver-bound points (the load generator, not the target, set the pace);
- percentiles marked too few (fewer values than their floor, `harness.metrics.quantiles.FLOORS`);
- a CPU-only run (the manifest's device), unless every target is `external` (served elsewhere);
- a capacity search stopped by its time budget (its interval is wider than the resolution).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.metrics.quantiles import FLOORS
from harness.run.capacity import judge, level_of
from harness.run.manifest import Manifest
from harness.summary.record import PointSummary, RunSummary
from harness.verdict.text import (
    Link,
    Sentence,
    level_text,
    point_id,
    section_id,
    share_percentile,
    short_level,
    target_id,
)

SHOWN = 3
"""Points named (and linked) in one caveat sentence; the rest are counted."""


def caveats(summary: RunSummary, manifest: Manifest | None, order: Sequence[str]
            ) -> list[Sentence]:
    order = list(order)
    out = _failed(summary, order)
    out += _interrupted(summary)
    out += _non_monotone(summary, order)
    out += _flagged(summary, order)
    out += _too_few(summary, order)
    out += _cpu_only(manifest)
    out += _budget(summary, order)
    return out


def _failed(summary: RunSummary, order: list[str]) -> list[Sentence]:
    started = {p.target for p in summary.points}
    return [Sentence("caveat", f"{label} ({info.name}) failed to start and is not ranked: "
                     f"{(info.error or 'no error recorded').strip().splitlines()[-1][:200]}",
                     (Link(label, target_id(order, label)),))
            for label, info in summary.targets.items()
            if info.status == "failed" and label in order and label not in started]


def _non_monotone(summary: RunSummary, order: list[str]) -> list[Sentence]:
    """A sweep level that passes above one that did not: the interval stops at the first that
    did not, so a later pass is said, not hidden."""
    out = []
    for target in order:
        if target in summary.capacity:
            continue
        points = sorted((p for p in summary.points if p.target == target and p.failure is None
                         and level_of(p) is not None), key=lambda p: level_of(p) or 0.0)
        # an unsure level (too few requests to tell) below a pass bounds nothing (sweep_interval)
        first = next((p for p in points if judge(p, summary.slo_share).judged
                      not in ("pass", "unsure")), None)
        later = [p for p in points if first is not None and (level_of(p) or 0) > (
            level_of(first) or 0) and judge(p, summary.slo_share).judged == "pass"]
        if first is None or not later:
            continue
        out.append(Sentence("caveat", (
            f"{target} passes at {short_level(later[0])} although {short_level(first)} did not: "
            "the capacity stops at the first level that does not pass; re-measure the two "
            "(repeats, or longer points) before reading more into it."),
            _point_links([first, later[0]], order)))
    return out


def _interrupted(summary: RunSummary) -> list[Sentence]:
    if not summary.interrupted:
        return []
    targets = len({p.target for p in summary.points})
    return [Sentence("caveat", f"The run was interrupted after {len(summary.points)} points "
                     f"on {targets} targets: what follows them was not measured.",
                     (Link("results", section_id("results")),))]


def _point_links(points: Sequence[PointSummary], order: list[str]) -> tuple[Link, ...]:
    return tuple(Link(f"{p.target} {short_level(p)}", point_id(order, p.target, p.point))
                 for p in points[:SHOWN] if p.target in order)


def _flagged(summary: RunSummary, order: list[str]) -> list[Sentence]:
    bound = [p for p in summary.points if "driver_bound" in p.flags]
    if not bound:
        return []
    named = ", ".join(f"{p.target} at {short_level(p)}" for p in bound[:SHOWN])
    more = f" and {len(bound) - SHOWN} more" if len(bound) > SHOWN else ""
    return [Sentence("caveat", f"{len(bound)} of {len(summary.points)} points were "
                     f"driver-bound ({named}{more}): the load generator, not the target, set "
                     "their pace, so their latency is suspect.", _point_links(bound, order))]


def _too_few(summary: RunSummary, order: list[str]) -> list[Sentence]:
    out = []
    for name in dict.fromkeys((share_percentile(summary.slo_share), "p99")):
        marked = [p for p in summary.points
                  if p.ttft_ms is not None and name in p.ttft_ms.too_few]
        if not marked:
            continue
        first = marked[0]
        count = first.ttft_ms.count if first.ttft_ms is not None else 0
        out.append(Sentence("caveat", (
            f"TTFT {name} is marked too few in {len(marked)} of {len(summary.points)} points: "
            f"it needs {FLOORS[name]} values and e.g. {first.target} at {short_level(first)} "
            f"has {count}; read those percentiles as rough, the gate refuses them."),
            _point_links(marked, order)))
    return out


def _cpu_only(manifest: Manifest | None) -> list[Sentence]:
    if manifest is None or manifest.device != "cpu" or not _serves_here(manifest):
        return []
    cores = manifest.machine.usable_cores or manifest.machine.cores
    where = f" on {cores} CPU core{'s' if cores != 1 else ''}" if cores is not None else ""
    return [Sentence("caveat", f"CPU-only run (device cpu{where}): batching gains and absolute "
                     "latencies are at CPU scale and do not transfer to a GPU.",
                     (Link("run details", section_id("manifest")),))]


def _serves_here(manifest: Manifest) -> bool:
    """Whether a target ran on this machine: one the registry marks not local (`external`) runs
    wherever its URL points, so this machine's device says nothing about it (`patternbench
    capacity URL` of a GPU server)."""
    from targets import TARGETS

    resolved = manifest.scenario.resolved
    if resolved is None or not resolved.targets:
        return True
    infos = [TARGETS.get(t.name) for t in resolved.targets]
    return any(info is None or info.local for info in infos)


def _budget(summary: RunSummary, order: list[str]) -> list[Sentence]:
    out = []
    for target, cap in summary.capacity.items():
        if cap.stopped != "budget" or target not in order:
            continue
        low = level_text(cap.axis, cap.last_pass.level) if cap.last_pass else "none"
        high = f"{cap.first_fail.level:g}" if cap.first_fail else "not found"
        out.append(Sentence("caveat", (
            f"{target}'s capacity search stopped at its {cap.budget_s:g} s budget after "
            f"{len(cap.levels)} levels ({cap.elapsed_s:.0f} s): last pass {low}, first fail "
            f"{high}; a larger budget narrows it."), (Link(target, target_id(order, target)),)))
    return out
