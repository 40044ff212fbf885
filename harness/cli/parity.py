"""`patternbench parity URL`: the argument parsing and wiring of the parity check
(`harness.run.parity`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.run.parity.check import run_parity, table_markdown
from harness.run.parity.clients import CLIENTS
from harness.run.parity.load import ParityLoad
from targets.external import ExternalConfig, ExternalError, listed_model, probe

EXIT_LEG_FAILED = 3
EXIT_INTERRUPTED = 130

HELP = """\
Run patternbench's own driver and the benchmark clients people use (vLLM's `bench serve`,
GuideLLM, AIPerf: `make vllm`, `make guidellm`, `make aiperf`) on one server with the same
open-loop Poisson load, alternated round by round, and print one table: each client's median
over the rounds with its spread, and patternbench's difference from the others' median.
Clients that are not installed are skipped, saying how to install them. Writes parity.json
(every leg, as it ends) and parity.md to the folder it prints. docs/parity.md says what agreement
to expect and why.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parity", help="patternbench's numbers against vLLM bench, GuideLLM and "
                                      "AIPerf on one server", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", help="base URL of the server, e.g. http://127.0.0.1:8000")
    p.add_argument("--model", help="model name the server serves (default: the first it lists)")
    p.add_argument("--tokenizer", default="tiny",
                   help="model spec whose tokenizer folder every client loads (default tiny)")
    p.add_argument("--rate", type=float, default=4.0,
                   help="Poisson arrival rate, requests/s (default 4; about half the server's "
                        "capacity compares clients best)")
    p.add_argument("--requests", type=int, default=120, help="requests per leg (default 120)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of every client (default 3)")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help=f"clients in round order (default {','.join(CLIENTS)})")
    p.add_argument("--prompt-tokens", type=int, default=32, help="prompt tokens (default 32)")
    p.add_argument("--output-tokens", type=int, default=16, help="output tokens (default 16)")
    p.add_argument("--temperature", type=float, default=0.0,
                   help="temperature every client sends (default 0, greedy): a client that "
                        "sends none gets the server's default (1.0), and sampling costs time")
    p.add_argument("--client-cpus", help="pin every client to these cores, e.g. 1 (default: "
                                         "not pinned); pin the server apart from them")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--results", default="results", help="results root (default results/)")


def run(args: argparse.Namespace) -> int:
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown or not clients:
        print(f"patternbench parity: unknown client {', '.join(unknown) or '(none given)'}; "
              f"known: {', '.join(CLIENTS)}", file=sys.stderr)
        return 2
    if args.rate <= 0 or args.requests < 1 or args.rounds < 1 or args.temperature < 0:
        print("patternbench parity: --rate must be > 0, --requests and --rounds ≥ 1, "
              "--temperature ≥ 0", file=sys.stderr)
        return 2
    try:
        cfg = ExternalConfig.from_options({"url": args.url})
        probe(cfg)
    except (ExternalError, ValueError) as exc:
        print(f"patternbench parity: {exc}", file=sys.stderr)
        return 2
    cpus = tuple(int(c) for c in args.client_cpus.split(",")) if args.client_cpus else None
    load = ParityLoad(url=cfg.url, model=args.model or listed_model(cfg) or args.tokenizer,
                      tokenizer=args.tokenizer, rate_rps=args.rate, requests=args.requests,
                      prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens,
                      temperature=args.temperature, seed=args.seed, client_cpus=cpus)
    folder = Path(args.results) / time.strftime("parity-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    record = run_parity(load, clients, args.rounds, folder)
    print(table_markdown(record))
    print(f"parity: {time.monotonic() - start:.0f} s; results: {folder}")
    if record.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_LEG_FAILED if any(leg.error for leg in record.legs) else 0
