"""Token-length distributions for prompts and outputs (`[workload]`), drawn per request.

`prompt_tokens` and `output_tokens` each take a whole number (fixed) or a table::

    output_tokens = 64                                            # fixed
    output_tokens = { dist = "uniform", min = 16, max = 112 }     # whole numbers, both ends in
    output_tokens = { dist = "normal", mean = 64, stdev = 16 }
    output_tokens = { dist = "lognormal", mean = 64, stdev = 48 }  # mean/stdev of the lengths
    lengths = "chat"                        # both from the built-in `chat` profile (`CHAT`)
    lengths = { table = "lengths.csv" }     # (prompt_tokens, output_tokens) rows, drawn jointly

A lognormal's `mean` and `stdev` are those of the lengths themselves (not of their log):
σ² = ln(1 + stdev²/mean²), μ = ln(mean) − σ²/2. Every draw takes the caller's seeded
`random.Random` (the scenario seed and the request index: `harness.workload`), so a run is
reproducible. A draw is rounded and kept ≥ 1; `clip` then fits it to the model's context.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.values import ScenarioError
from harness.scenario.values import integer as _int
from harness.scenario.values import number as _num
from harness.scenario.values import table as _table

DISTS = ("fixed", "uniform", "normal", "lognormal")
PROFILES = ("chat",)


@dataclass(frozen=True)
class Lengths:
    """One length distribution (see the module docstring); `low`/`high` bound `uniform`."""

    dist: str = "fixed"
    mean: float = 1.0
    stdev: float = 0.0
    low: int = 1
    high: int = 1

    @property
    def nominal(self) -> int:
        """The distribution's mean, rounded: what the workload reports as its length."""
        if self.dist == "uniform":
            return round((self.low + self.high) / 2)
        return max(1, round(self.mean))

    def draw(self, rng: random.Random) -> int:
        """One length (≥ 1 token) from `rng`."""
        if self.dist == "uniform":
            return rng.randint(self.low, self.high)
        if self.dist == "fixed" or self.stdev <= 0:
            return max(1, round(self.mean))
        if self.dist == "normal":
            return max(1, round(rng.gauss(self.mean, self.stdev)))
        sigma2 = math.log1p((self.stdev / self.mean) ** 2)
        return max(1, round(rng.lognormvariate(math.log(self.mean) - sigma2 / 2,
                                               math.sqrt(sigma2))))


# The `chat` profile: LMSYS-Chat-1M (Zheng et al., 2023, arXiv:2309.11998, Table 1 and the
# dataset card) reports 69.5 tokens per prompt and 214.5 per response on average (Llama 2
# tokenizer). It publishes no spread: stdev = mean (coefficient of variation 1) is our choice.
CHAT_PROMPT_MEAN = 69.5
CHAT_OUTPUT_MEAN = 214.5
CHAT = (Lengths("lognormal", CHAT_PROMPT_MEAN, CHAT_PROMPT_MEAN),
        Lengths("lognormal", CHAT_OUTPUT_MEAN, CHAT_OUTPUT_MEAN))


def parse_lengths(raw: Any, name: str) -> Lengths:
    """A whole number (fixed) or a `{dist = ...}` table; `ScenarioError` names `name`.field."""
    if not isinstance(raw, Mapping):
        return Lengths("fixed", float(_int(raw, name, 1)))
    raw = _table(raw, name)
    dist = raw.get("dist", "fixed")
    if dist not in DISTS:
        raise ScenarioError(f"{name}.dist must be one of {DISTS}, got {dist!r}")
    allowed = {"fixed": {"mean"}, "uniform": {"min", "max"}}.get(dist, {"mean", "stdev"})
    unknown = sorted(set(raw) - allowed - {"dist"})
    missing = sorted(allowed - set(raw))
    if unknown or missing:
        raise ScenarioError(f"{name} ({dist}) takes {sorted(allowed)}; "
                            f"unknown {unknown}, missing {missing}")
    if dist == "uniform":
        low, high = _int(raw["min"], f"{name}.min", 1), _int(raw["max"], f"{name}.max", 1)
        if high < low:
            raise ScenarioError(f"{name}.max ({high}) must be >= {name}.min ({low})")
        return Lengths(dist, low=low, high=high)
    mean = _num(raw["mean"], f"{name}.mean", 1.0)
    stdev = _num(raw.get("stdev", 0.0), f"{name}.stdev")
    return Lengths(dist, mean, stdev)


def parse_profile(raw: Any, base_dir: Path | None) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`workload.lengths`: "" (none), a profile name, or `{table = PATH}` read by `read_table`
    (a relative path resolves against `base_dir`). Returns (what it was, the table rows)."""
    if isinstance(raw, str):
        if raw and raw not in PROFILES:
            raise ScenarioError(f"workload.lengths must be one of {PROFILES} or "
                                f"{{table = PATH}}, got {raw!r}")
        return raw, ()
    raw = _table(raw, "workload.lengths")
    if set(raw) != {"table"} or not isinstance(raw["table"], str):
        raise ScenarioError(f"workload.lengths takes {{table = PATH}}, got {dict(raw)!r}")
    path = Path(raw["table"])
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path), read_table(path)


def read_table(path: Path) -> tuple[tuple[int, int], ...]:
    """(prompt_tokens, output_tokens) rows from a CSV (a header naming both columns) or a JSONL
    file (`.jsonl`: one object per line with both keys). `ScenarioError` names the line."""
    if not path.exists():
        raise ScenarioError(f"workload.lengths table not found: {path}")
    text = path.read_text(encoding="utf-8")
    rows = _jsonl_rows(path, text) if path.suffix == ".jsonl" else _csv_rows(path, text)
    if not rows:
        raise ScenarioError(f"{path}: the lengths table has no rows")
    return tuple(rows)


def _row(path: Path, line: int, item: Any) -> tuple[int, int]:
    if not isinstance(item, Mapping):
        raise ScenarioError(f"{path}:{line}: expected prompt_tokens and output_tokens")
    try:
        pair = int(item["prompt_tokens"]), int(item["output_tokens"])
    except (KeyError, TypeError, ValueError):
        raise ScenarioError(f"{path}:{line}: prompt_tokens and output_tokens must be whole "
                            f"numbers, got {dict(item)!r}") from None
    if min(pair) < 1:
        raise ScenarioError(f"{path}:{line}: token counts must be >= 1, got {pair}")
    return pair


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, int]]:
    rows = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path}:{line}: invalid JSON: {exc.msg}") from None
        rows.append(_row(path, line, item))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, int]]:
    reader = csv.DictReader(text.splitlines())
    if not {"prompt_tokens", "output_tokens"} <= set(reader.fieldnames or ()):
        raise ScenarioError(f"{path}:1: the header must name prompt_tokens and output_tokens")
    return [_row(path, reader.line_num, item) for item in reader]


def clip(prompt: int, output: int, context: int) -> tuple[int, int]:
    """Fit a drawn (prompt, output) pair to a `context`-token window: the prompt keeps at most
    `context` − 1 tokens (a server refuses a prompt that fills its context), then the output
    at most what is left, so prompt + output ≤ context; both stay ≥ 1."""
    prompt = max(1, min(prompt, context - 1))
    return prompt, max(1, min(output, context - prompt))
