"""The scenario's `[[targets]]`: which serving patterns run, each with its options and what it
changes of the scenario's request mode and load client.

    [[targets]]
    name = "fastapi_threadpool"
    label = "limited_retry"                    # tells apart two runs of one target
    options = { workers = 4, max_queue = 0 }   # the target's own options
    workload = { stream = false }              # request-mode fields (TARGET_WORKLOAD_FIELDS)
    client = { retry_refused = 4 }             # `[client]` knobs, merged over the scenario's

A plain string is a target with default options: `targets = ["flask_threads"]`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.scenario.decode import decode, error
from harness.scenario.types import TargetConfig


def parse_targets(raw: Sequence[Any]) -> tuple[TargetConfig, ...]:
    """The `[[targets]]` entries, each decoded as `TargetConfig` declares it; labels unique."""
    out = tuple(_target(i, item) for i, item in enumerate(raw))
    labels = [t.label for t in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise error("targets", f"labels must be unique; repeated: {', '.join(map(repr, dupes))} "
                               f"(set label = ...)")
    return out


def _target(i: int, item: Any) -> TargetConfig:
    """A name alone, or a table; the label defaults to the name."""
    if isinstance(item, str):
        item = {"name": item}
    if isinstance(item, Mapping) and "name" in item and "label" not in item:
        item = {**item, "label": item["name"]}
    return decode(TargetConfig, item, f"targets[{i}]")
