"""`python -m targets NAME [--port P] [--model SPEC] [--option key=value ...]`: run one target.

It binds to 127.0.0.1 unless told otherwise; a non-loopback `--host` also needs `--allow-remote`,
so a server (with or without `--api-key`) is never exposed to the network by accident.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
from typing import Any

from targets import TARGETS
from targets.model.tuning import keep_freed_memory
from targets.server.api import Limits
from targets.server.config import ServeConfig, split_options


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m targets", description=__doc__)
    parser.add_argument("name", choices=sorted(TARGETS), help="serving pattern to run")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host other than a loopback address")
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """`ValueError` for a non-loopback `host` without `allow_remote`."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"--host {host} is not a loopback address: the server would be "
                         "reachable from other machines; add --allow-remote to mean it")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """The target's config from its flags; `ValueError` naming a bad shared option.

    `--option`s win over `--options-json`; a shared option given as an option wins over the
    `--drain-timeout` and `--max-tokens-cap` flags, and `--max-concurrency` / `--max-queue` win
    over the options.
    """
    check_bind(args.host, args.allow_remote)
    options: dict[str, Any] = json.loads(args.options_json) if args.options_json else {}
    if not isinstance(options, dict):
        raise ValueError(f"--options-json must be a JSON object, got {args.options_json!r}")
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
        options[key] = parse_value(value)
    flags = {"drain_timeout_s": args.drain_timeout, "max_tokens_cap": args.max_tokens_cap}
    for key in ("max_concurrency", "max_queue"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    shared, own = split_options({**flags, **options})
    return ServeConfig(name=args.name, host=args.host, port=args.port, model=args.model,
                       device=args.device, options=own, shared=shared, api_key=args.api_key,
                       torch_threads=args.torch_threads)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    keep_freed_memory()  # every pattern alike: no page faults on each step's temporaries
    module = importlib.import_module(TARGETS[args.name].module)
    try:
        module.serve(config_from_args(args))
    except ValueError as exc:  # a bad option or model spec: one line, not a traceback
        raise SystemExit(f"{args.name}: {exc}") from None


if __name__ == "__main__":
    main()
