"""`python -m targets NAME [--port P] [--model SPEC] [--option key=value ...]`: run one target."""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from targets import TARGETS
from targets.api import Limits
from targets.config import ServeConfig
from targets.model import keep_freed_memory


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m targets", description=__doc__)
    parser.add_argument("name", choices=sorted(TARGETS), help="serving pattern to run")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="tiny", help="preset, HF folder, or sim:...")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    parser.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                        help="pattern option, e.g. -o threads=16 (repeatable)")
    parser.add_argument("--options-json", default=None, help="all options as one JSON object")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds in-flight requests may take after SIGTERM")
    parser.add_argument("--max-concurrency", type=int, default=None,
                        help="requests running at once (default: the pattern's own)")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="requests waiting for a slot before 503 (default 256)")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--max-tokens-cap", type=int, default=Limits.max_tokens_cap)
    return parser


def config_from_args(argv: list[str] | None = None) -> ServeConfig:
    args = build_parser().parse_args(argv)
    options: dict[str, Any] = json.loads(args.options_json) if args.options_json else {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        options[key] = parse_value(value)
    if args.max_concurrency is not None:
        options["max_concurrency"] = args.max_concurrency
    if args.max_queue is not None:
        options["max_queue"] = args.max_queue
    cap = options.get("max_tokens_cap", args.max_tokens_cap)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise SystemExit(f"max_tokens_cap must be a positive integer, got {cap!r}")
    return ServeConfig(name=args.name, host=args.host, port=args.port, model=args.model,
                       device=args.device, options=options, api_key=args.api_key,
                       drain_timeout_s=args.drain_timeout, torch_threads=args.torch_threads,
                       limits=Limits(max_tokens_cap=cap))


def main(argv: list[str] | None = None) -> None:
    cfg = config_from_args(argv)
    keep_freed_memory()  # every pattern alike: no page faults on each step's temporaries
    module = importlib.import_module(TARGETS[cfg.name].module)
    try:
        module.serve(cfg)
    except ValueError as exc:  # a bad option or model spec: one line, not a traceback
        raise SystemExit(f"{cfg.name}: {exc}") from None


if __name__ == "__main__":
    main()
