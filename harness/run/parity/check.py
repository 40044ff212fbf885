"""The parity check: rounds of every client on one load, alternated, into one record and table.

    record = run_parity(load, ["builtin", "vllm", "guidellm", "aiperf"], rounds=3,
                        folder=Path("results/parity-…"))
    print(table_markdown(record))

Round r runs every client once, in the given order (A B C, A B C, …): a drift of the machine
lands on each client alike. Each leg is written to `parity.json` as soon as it ends, so a check
that is interrupted keeps what it measured. A client that fails a leg is recorded with its
reason and the check goes on.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from harness.records.atomic import write_json, write_text
from harness.records.typed_json import doc, encode
from harness.run.parity.clients import BUILTIN, CLIENTS, LegFailed, run_external
from harness.run.parity.load import METRICS, Leg, ParityLoad

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ParityRecord:
    """parity.json: the load, the clients in their order, and every leg run so far."""

    schema_version: int = doc("version of this record's layout")
    load: ParityLoad = doc("what every client sent")
    clients: tuple[str, ...] = doc("the clients, in the order each round runs them")
    rounds: int = doc("rounds asked for")
    legs: tuple[Leg, ...] = doc("every leg run, in order")
    skipped: dict[str, str] = doc("clients not run, with the reason", {})
    interrupted: bool = doc("the check was stopped before its last leg", False)


@dataclass
class Spread:
    """One client's values of one metric over its rounds."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def span(self) -> tuple[float, float] | None:
        return (min(self.values), max(self.values)) if self.values else None


def spreads(record: ParityRecord) -> dict[str, dict[str, Spread]]:
    """client → metric key → its values over the rounds (failed legs left out)."""
    out: dict[str, dict[str, Spread]] = {c: {m.key: Spread() for m in METRICS}
                                         for c in record.clients}
    for leg in record.legs:
        if leg.error is None:
            for key, value in leg.values.items():
                if value is not None:
                    out[leg.client][key].values.append(value)
    return out


def difference(by_client: dict[str, dict[str, Spread]], key: str) -> float | None:
    """patternbench's median against the median of the external clients' medians (`by_client`:
    `spreads` of a record), as a fraction (+0.03: 3% above); None without both."""
    ours = by_client.get(BUILTIN.name, {}).get(key, Spread()).median
    theirs = [s[key].median for c, s in by_client.items() if c != BUILTIN.name]
    known = [v for v in theirs if v is not None]
    if ours is None or not known or statistics.median(known) == 0:
        return None
    return ours / statistics.median(known) - 1.0


def run_builtin(load: ParityLoad, folder: Path, round_: int, out: TextIO) -> Leg:
    """patternbench's own driver, as `patternbench run` runs it, on the parity load: exactly
    `requests` requests, as the other clients send (`min_requests` = `max_requests`), the
    window from the first arrival to the last one sent."""
    from harness.run.folder import RunDir
    from harness.run.runner import RunOptions, run_scenario
    from harness.scenario.load import parse_scenario
    from harness.summary.record import read_summary

    scenario = parse_scenario({
        "name": "parity", "description": f"Parity check leg against {load.url}.",
        "model": load.tokenizer, "seed": load.seed + round_,
        "workload": {"api": "chat", "stream": True, "prompt_tokens": load.prompt_tokens,
                     "output_tokens": load.output_tokens, "temperature": load.temperature},
        "load": {"kind": "poisson", "rate_rps": [load.rate_rps], "warmup_s": 0,
                 "duration_s": load.expected_s, "min_requests": load.requests,
                 "max_requests": load.requests,
                 "max_duration_s": max(60.0, load.expected_s * 4)},
        **({"cpu_affinity": {"driver": list(load.client_cpus)}} if load.client_cpus else {}),
        "targets": [{"name": "external", "label": "parity",
                     "options": {"url": load.url, "model": load.model, "api": "chat"}}],
    })
    start = time.monotonic()
    run_dir = run_scenario(scenario, RunOptions(results_root=folder, reports_root=folder,
                                                out=out))
    wall = time.monotonic() - start
    summary = read_summary(RunDir(run_dir).summary)
    if not summary.points:
        raise LegFailed(f"builtin measured no point ({run_dir})")
    metrics = summary.points[0]

    def p(dist: object, q: str) -> float | None:
        return None if dist is None else float(getattr(dist, q))

    values = {"output_tok_s": metrics.throughput.output_tok_s, "req_s": metrics.throughput.req_s,
              "ttft_p50_ms": p(metrics.ttft_ms, "p50"), "ttft_p99_ms": p(metrics.ttft_ms, "p99"),
              "tpot_p50_ms": p(metrics.tpot_ms, "p50"), "itl_p50_ms": p(metrics.itl_ms, "p50"),
              "e2e_p50_ms": p(metrics.e2e_ms, "p50")}
    requests = metrics.requests
    return Leg(client=BUILTIN.name, round=round_, values=values, completed=requests.ok,
               failed=requests.total - requests.ok, wall_s=wall,
               folder=str(run_dir.relative_to(folder)))


def run_parity(load: ParityLoad, clients: Sequence[str], rounds: int, folder: Path,
               out: TextIO = sys.stderr) -> ParityRecord:
    """Run `rounds` rounds of `clients` on `load` into `folder` (parity.json, parity.md)."""
    from targets.model.store import materialize

    skipped = {name: why for name in clients if (why := CLIENTS[name].missing())}
    order = tuple(name for name in clients if name not in skipped)
    record = ParityRecord(SCHEMA_VERSION, load, order, rounds, (), skipped)
    for why in skipped.values():
        print(f"parity: skipping {why}", file=out, flush=True)
    tokenizer_dir = materialize(load.tokenizer)
    try:
        for round_ in range(1, rounds + 1):
            for name in order:
                print(f"parity: round {round_}/{rounds}: {name} — {load.requests} requests at "
                      f"{load.rate_rps:g}/s (~{load.expected_s:.0f} s)", file=out, flush=True)
                leg = _leg(name, load, folder, tokenizer_dir, round_, out)
                record = replace(record, legs=(*record.legs, leg))
                write_json(folder / "parity.json", encode(record))
                print(f"parity:   {leg_line(leg)}", file=out, flush=True)
    except KeyboardInterrupt:
        record = replace(record, interrupted=True)
        print("parity: interrupted; the legs run so far are kept", file=out, flush=True)
    write_json(folder / "parity.json", encode(record))
    write_text(folder / "parity.md", table_markdown(record))
    return record


def _leg(name: str, load: ParityLoad, folder: Path, tokenizer_dir: Path, round_: int,
         out: TextIO) -> Leg:
    leg_folder = folder / f"r{round_}-{name}"
    try:
        if name == BUILTIN.name:
            return run_builtin(load, leg_folder, round_, out)
        return run_external(CLIENTS[name], load, leg_folder, tokenizer_dir, round_)
    except LegFailed as exc:
        return Leg(client=name, round=round_, values={}, completed=0, failed=0, wall_s=0.0,
                   folder=leg_folder.name, error=str(exc))


def leg_line(leg: Leg) -> str:
    if leg.error is not None:
        return f"{leg.client} failed: {leg.error}"
    shown = ", ".join(f"{m.label} {_num(leg.values.get(m.key))}" for m in METRICS)
    return (f"{leg.client}: {leg.completed} ok, {leg.failed} failed, {leg.wall_s:.0f} s; "
            f"{shown}")


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table_markdown(record: ParityRecord) -> str:
    """The parity table: per metric, each client's median [min–max] over its rounds, and
    patternbench's difference from the external clients' median."""
    by_client = spreads(record)
    head = ["metric", *record.clients, "builtin vs others' median"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in METRICS:
        cells = []
        for client in record.clients:
            s = by_client[client][m.key]
            span = s.span
            cells.append("—" if span is None else
                         f"{_num(s.median)} [{_num(span[0])}–{_num(span[1])}]")
        diff = difference(by_client, m.key)
        cells.append("—" if diff is None else f"{diff:+.1%}")
        lines.append(f"| {m.label} ({m.unit}) | " + " | ".join(cells) + " |")
    load = record.load
    legs = [leg for leg in record.legs if leg.error is None]
    lines += ["", f"{load.requests} requests per leg, Poisson at {load.rate_rps:g}/s, "
              f"{load.prompt_tokens} prompt / {load.output_tokens} output tokens, temperature "
              f"{load.temperature:g}, chat, streamed; {len(legs)} legs over {record.rounds} "
              "rounds; median [min–max] of each client's rounds."]
    failed = [leg for leg in record.legs if leg.error is not None]
    lines += [f"- round {leg.round}, {leg.client}: {leg.error}" for leg in failed]
    lines += [f"- not run: {why}" for why in record.skipped.values()]
    lines += ["", "Each client's own names for these metrics:", "",
              "| metric | " + " | ".join(record.clients) + " |",
              "|" + "---|" * (len(record.clients) + 1)]
    lines += [f"| {m.label} | " + " | ".join(f"`{CLIENTS[c].names[m.key]}`"
                                             for c in record.clients) + " |" for m in METRICS]
    return "\n".join(lines) + "\n"
