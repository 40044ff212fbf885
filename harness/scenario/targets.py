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

from harness.scenario.client import client_values
from harness.scenario.types import TargetConfig
from harness.scenario.values import ScenarioError
from harness.scenario.values import table as _table

APIS = ("completions", "chat")
TARGET_WORKLOAD_FIELDS = ("stream", "api")
TARGET_KEYS = ("name", "label", "options", "workload", "client")


def parse_targets(raw: Sequence[Any]) -> tuple[TargetConfig, ...]:
    """The `[[targets]]` entries; `ScenarioError` (one line) for a malformed one."""
    if not raw:
        raise ScenarioError("a scenario needs at least one [[targets]] entry")
    out = tuple(_target(i, item) for i, item in enumerate(raw))
    labels = [t.label for t in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ScenarioError(f"target labels must be unique; repeated: {dupes} (set label = ...)")
    return out


def _target(i: int, item: Any) -> TargetConfig:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping) or "name" not in item:
        raise ScenarioError(f"targets[{i}] needs a name")
    extra = sorted(set(item) - set(TARGET_KEYS))
    if extra:
        raise ScenarioError(f"unknown keys {extra} in targets[{i}]; expected "
                            f"{', '.join(TARGET_KEYS)}")
    name = str(item["name"])
    options = _table(item.get("options", {}), f"targets[{i}].options")
    client = client_values(item.get("client", {}), f"targets[{i}].client",
                           f"targets[{i}].client")
    return TargetConfig(name=name, label=str(item.get("label", name)), options=dict(options),
                        workload=_workload(i, item.get("workload", {})), client=client)


def _workload(i: int, raw: Any) -> dict[str, Any]:
    workload = dict(_table(raw, f"targets[{i}].workload"))
    unknown = sorted(set(workload) - set(TARGET_WORKLOAD_FIELDS))
    if unknown:
        raise ScenarioError(f"targets[{i}].workload may set only {TARGET_WORKLOAD_FIELDS}, "
                            f"got {unknown}")
    if not isinstance(workload.get("stream", True), bool):
        raise ScenarioError(f"targets[{i}].workload.stream must be true or false")
    if workload.get("api", APIS[0]) not in APIS:
        raise ScenarioError(f"targets[{i}].workload.api must be one of {APIS}")
    return workload
