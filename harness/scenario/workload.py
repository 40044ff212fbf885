"""`[workload]`'s length tables and the rules that tie its fields together.

    length_fields({"output_tokens": {"dist": "lognormal", "mean": 64, "stdev": 48}}, None)
    # {"output_lengths": Lengths("lognormal", 64.0, 48.0), "output_tokens": 64}

A `prompt_tokens` / `output_tokens` table becomes `prompt_lengths` / `output_lengths`, its
rounded mean the nominal `prompt_tokens` / `output_tokens`; `lengths` (a profile or a table,
`harness.workload.lengths`) sets both and may not be mixed with such tables. The loader passes
these to the decoder as `given` values of `Workload` (`harness.scenario.decode`), then checks
the rules between fields (`check_shapes`). Every error is a one-line `ScenarioError` naming the
TOML path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.scenario.decode import error
from harness.workload.lengths import CHAT, parse_lengths, parse_profile


def length_fields(raw: Mapping[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """The `Workload` fields that `raw`'s ([workload]) length tables and `lengths` set."""
    values: dict[str, Any] = {}
    for key in ("prompt", "output"):
        field = f"{key}_tokens"
        if isinstance(raw, Mapping) and isinstance(raw.get(field), Mapping):
            lengths = parse_lengths(raw[field], f"workload.{field}")
            values[f"{key}_lengths"], values[field] = lengths, lengths.nominal
    if not isinstance(raw, Mapping) or "lengths" not in raw:
        return values
    if values:
        raise error("workload.lengths", "sets both lengths: drop the prompt_tokens / "
                                        "output_tokens tables beside it")
    name, rows = parse_profile(raw["lengths"], base_dir)
    if name == "chat":
        values["prompt_lengths"], values["output_lengths"] = CHAT
        values["prompt_tokens"], values["output_tokens"] = (x.nominal for x in CHAT)
    elif rows:
        values["lengths"], values["length_table"] = name, rows
        values["prompt_tokens"] = round(sum(p for p, _ in rows) / len(rows))
        values["output_tokens"] = round(sum(o for _, o in rows) / len(rows))
    return values


class Shape(Protocol):
    """What `check_shapes` reads of a `Workload`."""

    @property
    def prefixes(self) -> int: ...
    @property
    def prefix_tokens(self) -> int: ...
    @property
    def prompt_reuse(self) -> bool: ...
    @property
    def turns(self) -> int: ...


def check_shapes(workload: Shape) -> None:
    """Shared prefixes need a length and distinct prompts, and do not mix with sessions."""
    if workload.prefixes and workload.prefix_tokens < 1:
        raise error("workload.prefix_tokens", f"must be ≥ 1 with workload.prefixes, "
                                              f"got {workload.prefix_tokens}")
    if workload.prefixes and workload.prompt_reuse:
        raise error("workload.prefixes", "needs distinct prompts (prompt_reuse = false)")
    if workload.turns > 1 and workload.prefixes:
        raise error("workload.turns", f"must be 1 with workload.prefixes (every turn's message "
                                      f"would start with a prefix), got {workload.turns}")


def check_sessions(turns: int, kind: str, drivers: Sequence[str]) -> None:
    """Multi-turn sessions (`workload.turns` > 1) run closed-loop, in the builtin driver only."""
    if turns <= 1:
        return
    others = [d for d in drivers if d != "builtin"]
    if others:
        raise error("workload.turns", f"is run by the builtin driver only, not {others[0]!r}")
    if kind != "closed":
        raise error("workload.turns", f"needs load.kind = 'closed' (users), not {kind!r}")
