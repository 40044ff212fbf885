"""Checking `[workload]`'s length, shared-prefix and session fields into `Workload` arguments.

    workload_values({"output_tokens": {"dist": "lognormal", "mean": 64, "stdev": 48}}, None)
    # {"output_tokens": 64, "output_lengths": Lengths("lognormal", 64.0, 48.0)}

A `prompt_tokens` / `output_tokens` table becomes `prompt_lengths` / `output_lengths`, its
rounded mean the nominal `prompt_tokens` / `output_tokens`; `lengths` (a profile or a table,
`harness.workload.lengths`) sets both and may not be mixed with such tables. Every error is a
one-line `ScenarioError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.scenario.values import ScenarioError
from harness.scenario.values import integer as _int
from harness.scenario.values import number as _num
from harness.workload.lengths import CHAT, parse_lengths, parse_profile


def workload_values(raw: Mapping[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """`raw` ([workload]) with its length tables parsed and the new fields checked."""
    values = dict(raw)
    for key in ("prompt", "output"):
        field = f"{key}_tokens"
        if isinstance(values.get(field), Mapping):
            lengths = parse_lengths(values[field], f"workload.{field}")
            values[f"{key}_lengths"], values[field] = lengths, lengths.nominal
    if "lengths" in values:
        if "prompt_lengths" in values or "output_lengths" in values:
            raise ScenarioError("workload.lengths sets both lengths: drop the prompt_tokens / "
                                "output_tokens tables beside it")
        name, rows = parse_profile(values["lengths"], base_dir)
        values["lengths"], values["length_table"] = name, rows
        if name == "chat":
            values["prompt_lengths"], values["output_lengths"] = CHAT
            values["prompt_tokens"], values["output_tokens"] = (x.nominal for x in CHAT)
        elif rows:
            values["prompt_tokens"] = round(sum(p for p, _ in rows) / len(rows))
            values["output_tokens"] = round(sum(o for _, o in rows) / len(rows))
    _check_shapes(values)
    return values


def _check_shapes(values: Mapping[str, Any]) -> None:
    prefixes = _int(values.get("prefixes", 0), "workload.prefixes")
    if prefixes:
        _int(values.get("prefix_tokens", 0), "workload.prefix_tokens", 1)
        if values.get("prompt_reuse"):
            raise ScenarioError("workload.prefixes needs distinct prompts (prompt_reuse = false)")
    if _int(values.get("turns", 1), "workload.turns", 1) > 1 and prefixes:
        raise ScenarioError("workload.turns > 1 does not take workload.prefixes: every turn's "
                            "message would start with a prefix")
    _num(values.get("think_time_s", 0.0), "workload.think_time_s")


def check_sessions(turns: int, kind: str, drivers: Sequence[str]) -> None:
    """Multi-turn sessions (`workload.turns` > 1) run closed-loop, in the builtin driver only."""
    if turns <= 1:
        return
    others = [d for d in drivers if d != "builtin"]
    if others:
        raise ScenarioError(f"workload.turns is run by the builtin driver only, not {others[0]!r}")
    if kind != "closed":
        raise ScenarioError(f"workload.turns needs load.kind = 'closed' (users), not {kind!r}")
