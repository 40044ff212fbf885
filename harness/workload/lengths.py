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

from harness.scenario.decode import ScenarioError, decode, decode_variant, error, setting

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


@dataclass(frozen=True)
class Fixed:
    """The keys of `{dist = "fixed", ...}` (also without `dist`)."""

    mean: float = setting(ge=1)


@dataclass(frozen=True)
class Uniform:
    """The keys of `{dist = "uniform", ...}`: whole numbers, both ends included."""

    min: int = setting(ge=1)
    max: int = setting(ge=1)


@dataclass(frozen=True)
class Spread:
    """The keys of `{dist = "normal" | "lognormal", ...}`."""

    mean: float = setting(ge=1)
    stdev: float = setting(ge=0)


DIST_TABLES: dict[str, type[Fixed | Uniform | Spread]] = {
    "fixed": Fixed, "uniform": Uniform, "normal": Spread, "lognormal": Spread}
DISTS = tuple(DIST_TABLES)


@dataclass(frozen=True)
class LengthsFile:
    """`lengths = { table = PATH }`: a CSV or JSONL file of (prompt, output) rows."""

    table: str = setting()


def parse_lengths(raw: Any, path: str) -> Lengths:
    """A `{dist = ...}` table at the TOML `path`; `ScenarioError` names `path.key`."""
    dist, table = decode_variant(DIST_TABLES, raw, path, tag="dist", default="fixed")
    if isinstance(table, Uniform):
        if table.max < table.min:
            raise error(f"{path}.max", f"must be ≥ {path}.min ({table.min}), got {table.max}")
        return Lengths(dist, low=table.min, high=table.max)
    return Lengths(dist, table.mean, table.stdev if isinstance(table, Spread) else 0.0)


def parse_profile(raw: Any, base_dir: Path | None) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`workload.lengths`: a profile name (returned as is: `Workload.lengths` declares the
    names), or `{table = PATH}` read by `read_table` (a relative path resolves against
    `base_dir`). Returns (the name or the table's path, the table rows)."""
    if isinstance(raw, str):
        return raw, ()
    path = Path(decode(LengthsFile, raw, "workload.lengths").table)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path), read_table(path)


def read_table(path: Path) -> tuple[tuple[int, int], ...]:
    """(prompt_tokens, output_tokens) rows from a CSV (a header naming both columns) or a JSONL
    file (`.jsonl`: one object per line with both keys). `ScenarioError` names the line."""
    if not path.exists():
        raise error("workload.lengths", f"table not found: {path}")
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
        raise ScenarioError(f"{path}:{line}: token counts must be ≥ 1, got {pair}")
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
