"""The gate grammar: `[gates]` of a scenario parsed into frozen `Gate`s at load time.

A gate is a key (what to measure) and an expression (the bound), like k6's `thresholds`::

    [gates]
    "fastapi_batching.c32.ttft_ms.p99" = "< 1500"                 # absolute
    "*.c32.throughput.output_tok_s" = ">= -10%"                   # relative to a baseline
    "*.*.tpot_ms.p50" = "<= +10%"
    "fastapi_batching.c32.throughput.output_tok_s / flask_threads.c32.throughput.output_tok_s" \
        = ">= 8"                                                  # in-run ratio (one line in TOML)

A metric path is `<target|*>.<point|*>.<field>.<sub>`: a target label, a load point name, a
summary field (`FIELDS`) and its part (a statistic of a distribution, or a counter). An in-run
ratio is two paths joined by ` / `; a `*` point on both sides pairs points of the same name.
The operator is one of `<`, `<=`, `>`, `>=`; a relative bound is a signed percentage. A key
may hold a list of bounds, one gate each.

    >>> parse_gate("*.c32.ttft_ms.p99", "< 1500").kind
    'absolute'

A malformed gate raises `ScenarioError` in one line naming it, e.g.
`gates."*.c32.ttft_ms.p9": unknown statistic 'p9' (expected p50, p90, p95, p99, mean, max)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from harness.scenario.decode import ScenarioError
from harness.summary.record import DISTRIBUTIONS

Kind = Literal["absolute", "relative", "ratio"]
Op = Literal["<", "<=", ">", ">="]
STATS = ("p50", "p90", "p95", "p99", "mean", "max")
# field -> the parts a gate may name (distributions take STATS)
FIELDS: dict[str, tuple[str, ...]] = {
    **{name: STATS for name in DISTRIBUTIONS},
    "throughput": ("req_s", "output_tok_s", "input_tok_s"),
    "goodput": ("fraction", "req_s", "good_requests"),
    "requests": ("ok", "http_error", "refused", "timeout", "truncated", "conn_error",
                 "abandoned", "total"),
}
_EXPR = re.compile(r"^\s*(<=|>=|<|>)\s*([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class MetricPath:
    """`target.point.field.sub`; `target` or `point` may be `*` (every one)."""

    target: str
    point: str
    field: str
    sub: str

    def __str__(self) -> str:
        return f"{self.target}.{self.point}.{self.field}.{self.sub}"

    def at(self, target: str, point: str) -> MetricPath:
        """This path with the target and point filled in."""
        return MetricPath(target, point, self.field, self.sub)


@dataclass(frozen=True)
class Gate:
    """One parsed gate. `bound` is the limit as the kind reads it: the value itself (absolute),
    the ratio left / right (ratio), or the change in percent (relative, −10.0 for `>= -10%`)."""

    name: str
    expr: str
    kind: Kind
    op: Op
    bound: float
    left: MetricPath
    right: MetricPath | None = None

    @property
    def limit(self) -> float:
        """The bound as a ratio for relative gates (−10% → 0.9), else the bound itself."""
        return 1 + self.bound / 100 if self.kind == "relative" else self.bound


def parse_gates(raw: Mapping[str, Any]) -> tuple[Gate, ...]:
    """Every gate of a `[gates]` table; `ScenarioError` naming the first malformed one. A key
    may hold a list of bounds (k6 style): `"a.c1.itl_ms.p50" = ["< 2000", "<= +100%"]`."""
    return tuple(parse_gate(str(key), expr) for key, value in raw.items()
                 for expr in (value if isinstance(value, list) else [value]))


def parse_gate(key: str, expr: Any) -> Gate:
    """One gate from its key and expression (see the module docstring)."""
    where = f"gates.{_quote(key)}"
    if not isinstance(expr, str):
        raise ScenarioError(f"{where}: the bound must be a string like \"< 1500\" or "
                            f"\">= -10%\", got {expr!r}")
    match = _EXPR.match(expr)
    if match is None:
        raise ScenarioError(f"{where}: cannot read bound {expr!r} (expected an operator <, <=, "
                            f">, >= and a number, or a signed percentage like \">= -10%\")")
    op, number, pct = match.group(1), float(match.group(2)), bool(match.group(3))
    if not math.isfinite(number):
        raise ScenarioError(f"{where}: the bound {expr!r} is not a finite number")
    sides = [s.strip() for s in key.split("/")]
    if len(sides) > 2:
        raise ScenarioError(f"{where}: a ratio divides exactly two metric paths")
    left = _path(sides[0], where)
    right = _path(sides[1], where) if len(sides) == 2 else None
    kind: Kind = "ratio" if right else "relative" if pct else "absolute"
    if right is not None:
        _check_ratio(left, right, pct, number, where)
    return Gate(name=key, expr=expr, kind=kind, op=_op(op), bound=number, left=left,
                right=right)


def _path(text: str, where: str) -> MetricPath:
    parts = text.split(".")
    if len(parts) > 4:  # an open-loop point name holds a dot: r0.5
        parts = [parts[0], ".".join(parts[1:-2]), parts[-2], parts[-1]]
    if len(parts) != 4 or not all(parts):
        raise ScenarioError(f"{where}: {text!r} is not a metric path <target|*>.<point|*>."
                            f"<field>.<part> (e.g. fastapi_batching.c32.ttft_ms.p99)")
    target, point, name, sub = parts
    if name not in FIELDS:
        raise ScenarioError(f"{where}: unknown field {name!r} (expected "
                            f"{', '.join(FIELDS)})")
    if sub not in FIELDS[name]:
        what = "statistic" if name in DISTRIBUTIONS else f"{name} part"
        raise ScenarioError(f"{where}: unknown {what} {sub!r} (expected "
                            f"{', '.join(FIELDS[name])})")
    return MetricPath(target, point, name, sub)


def _check_ratio(left: MetricPath, right: MetricPath, pct: bool, number: float,
                 where: str) -> None:
    if pct:
        raise ScenarioError(f"{where}: an in-run ratio takes a plain number bound "
                            f"(\">= 8\"), not a percentage")
    if "*" in (left.target, right.target):
        raise ScenarioError(f"{where}: an in-run ratio names both targets (no *)")
    if (left.point == "*") != (right.point == "*"):
        raise ScenarioError(f"{where}: an in-run ratio uses * as the point on both sides or "
                            f"on neither")
    if number <= 0:
        raise ScenarioError(f"{where}: a ratio bound must be positive")


def _op(text: str) -> Op:
    ops: dict[str, Op] = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
    return ops[text]


def _quote(key: str) -> str:
    return f'"{key}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", key) else key
