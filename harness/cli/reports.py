"""The report-side subcommands of `patternbench`: compare, publish, export (wiring only).

`harness.cli` adds their parsers with `add_parsers` and hands a parsed command to `run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMANDS = ("compare", "publish", "export")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmp = sub.add_parser("compare", help="compare runs: deltas with CIs, HTML and Markdown")
    cmp.add_argument("runs", nargs="+", help="two or more results/<run> folders; the first "
                                             "is the reference")
    cmp.add_argument("--reports", default="reports", help="reports root (default reports/)")
    cmp.add_argument("--baselines", default="results/baselines",
                     help="saved baselines root: the first run's scenario baseline on this "
                          "machine kind gives the run-to-run noise two single runs are judged by")

    pub = sub.add_parser("publish", help="write a static site: index, reports, compare pages")
    pub.add_argument("dir", help="output folder, ready for static hosting")
    pub.add_argument("--results", default="results", help="results root (default results/)")

    exp = sub.add_parser("export", help="a run's points as one table: csv, md or parquet")
    exp.add_argument("run", help="a results/<run> folder")
    exp.add_argument("--format", choices=("csv", "md", "parquet"), default="csv")
    exp.add_argument("--output", help="file to write (default <run>/points.<format>)")


def run(args: argparse.Namespace) -> int:
    """Run one of `COMMANDS`; 2 with a message on stderr when a run folder is unusable."""
    from harness.summary.record import SummaryError

    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "publish":
            return _publish(args)
        return _export(args)
    except (FileNotFoundError, SummaryError, ValueError) as exc:
        print(f"patternbench: {exc}", file=sys.stderr)
        return 2


def _compare(args: argparse.Namespace) -> int:
    from harness.report.compare_page import compare_runs

    html, md = compare_runs([Path(r) for r in args.runs], Path(args.reports),
                            Path(args.baselines))
    print(f"compare: {html}")
    print(f"markdown: {md}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from harness.report.publish import publish

    print(publish(Path(args.results), Path(args.dir)))
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness.report.export import export_run

    print(export_run(Path(args.run), args.format,
                     Path(args.output) if args.output else None))
    return 0


def main(argv: list[str]) -> int:
    """These subcommands alone (as `patternbench` parses them), e.g. for tests."""
    parser = argparse.ArgumentParser(prog="patternbench")
    add_parsers(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
