"""Reading a scenario file: TOML → each table decoded into its frozen type → `Scenario`.

    scenario = load_scenario("scenarios/default.toml")

Each table is decoded by the one decoder (`harness.scenario.decode`) into the dataclass that
declares it; every error is a one-line `ScenarioError` naming the TOML path, e.g.
`load.concurrency[2]: must be ≥ 1, got 0`. The top level is `ScenarioFile` below.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.gate.spec import parse_gates
from harness.scenario.capacity import DEFAULT_SHARE, check_slo
from harness.scenario.client import Affinity, ClientSettings
from harness.scenario.decode import ScenarioError, decode, error, setting
from harness.scenario.fault import parse_fault
from harness.scenario.points import parse_load
from harness.scenario.targets import parse_targets
from harness.scenario.types import LoadPoint, Scenario, Workload
from harness.scenario.workload import check_sessions, check_shapes, length_fields


@dataclass(frozen=True, kw_only=True)
class ScenarioFile:
    """The top level of a scenario file, as written. `driver` is one name or a list of them;
    `workload`, `load`, `targets` and `fault` are read by their own modules."""

    name: str | None = None  # default: the file's name
    description: str = ""
    model: str = "tiny"
    seed: int = setting(0, ge=0)
    driver: tuple[str, ...] = setting(("builtin",), nonempty=True)
    timeout_s: float = setting(300.0, ge=1e-3)
    device: str = "auto"
    repeats: int = setting(1, ge=1)
    workload: Mapping[str, Any] = setting({})
    load: Mapping[str, Any] = setting({})
    targets: tuple[Any, ...] = setting(nonempty=True)  # a name or a table each
    slo: Mapping[str, float] = setting({}, ge=0)  # limits, and `share` in (0, 1]
    gates: Mapping[str, Any] = setting({})  # `harness.gate.spec`
    client: ClientSettings = field(default_factory=ClientSettings)
    cpu_affinity: Affinity = field(default_factory=Affinity)
    fault: Mapping[str, Any] | None = None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file. Raises `ScenarioError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: invalid TOML: {exc}") from exc
    return parse_scenario(data, default_name=path.stem, base_dir=path.parent)


def parse_scenario(data: Mapping[str, Any], *, default_name: str = "scenario",
                   base_dir: Path | None = None) -> Scenario:
    """Validate `data` (as `tomllib` reads it); a relative trace `path` or lengths table
    resolves against `base_dir` when given."""
    top = decode(ScenarioFile, data, "")
    workload = decode(Workload, top.workload, "workload",
                      given=length_fields(top.workload, base_dir))
    check_shapes(workload)
    points, capacity = parse_load(top.load)
    if base_dir is not None:
        points = tuple(_resolve_trace(p, base_dir) for p in points)
    drivers = _drivers(top.driver)
    others = [d for d in drivers if d != "builtin"]
    if points[0].min_requests and others:
        raise error("load.min_requests", f"is run by the builtin driver only, not {others[0]!r}")
    check_sessions(workload.turns, points[0].kind, others)
    slo = dict(top.slo)
    share = slo.pop("share", DEFAULT_SHARE)
    check_slo(slo, share, search=capacity is not None)
    fault = parse_fault(top.fault, len(points), capacity is not None, drivers)
    targets = parse_targets(top.targets)
    for i, target in enumerate(targets):
        target.effective_fault(fault, f"targets[{i}].fault")
    return Scenario(
        name=default_name if top.name is None else top.name,
        description=top.description,
        model=top.model,
        seed=top.seed,
        driver=drivers[0],
        drivers=drivers,
        client=top.client,
        cpu_affinity=top.cpu_affinity.cores(),
        fault=fault,
        workload=workload,
        points=points,
        targets=targets,
        timeout_s=top.timeout_s,
        slo=slo,
        gates=parse_gates(top.gates),
        device=top.device,
        raw=dict(data),
        repeats=top.repeats,
        capacity=capacity,
        slo_share=share,
    )


def _drivers(names: tuple[str, ...]) -> tuple[str, ...]:
    """`driver = "k6"` or `driver = ["builtin", "k6"]`: each driver once."""
    twice = [n for i, n in enumerate(names) if n in names[:i]]
    if twice:
        raise error("driver", f"names {twice[0]!r} twice, got {list(names)!r}")
    return names


def _resolve_trace(point: LoadPoint, base_dir: Path) -> LoadPoint:
    path = point.params.get("path")
    if point.kind != "trace" or not isinstance(path, str) or Path(path).is_absolute():
        return point
    return replace(point, params={**point.params, "path": str(base_dir / path)})
