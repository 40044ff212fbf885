"""`patternbench` command line: wiring only. Each subcommand resolves its arguments into plain
values and calls one stage; no argument object reaches core code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.cli import parity as cli_parity
from harness.cli import reports as cli_reports
from harness.gate.baseline import BaselineError
from harness.run.folder import RunDir, calibration_path
from harness.scenario.decode import ScenarioError
from harness.scenario.load import load_scenario

DESCRIPTION = """\
patternbench measures LLM serving patterns against one model with identical load.

  patternbench run scenarios/default.toml            run a scenario, write results and a report
  patternbench run S --targets flask_threads         only some targets of the scenario
  patternbench report results/<run>                  rebuild a run's HTML report
  patternbench gate results/<run>                    judge the run's [gates] (exit 0/1/2)
  patternbench baseline save results/<run> <run> ...  save 3+ unchanged runs as its baseline
  patternbench list                                  targets, drivers and scenarios
  patternbench calibrate                             each driver's own overhead (echo target)
  patternbench compare results/<a> results/<b>       deltas with CIs, HTML and Markdown
  patternbench publish site/                         a static site: index, reports, compares
  patternbench export results/<run> --format csv     a run's points as csv, md or parquet
  patternbench serve fastapi_threadpool --port 8000  one target in the foreground (try curl)
  patternbench capacity http://127.0.0.1:8000        capacity under an SLO of any OpenAI server
  patternbench parity http://127.0.0.1:8000          our numbers beside vLLM bench, GuideLLM, AIPerf
"""

EXIT_CODES = """\
exit codes:
  0    done (run: every target ran all its points)
  2    bad arguments or scenario, or an unreadable run (report)
  3    run: a target failed (did not start, or died during a load point); results and report
       are written all the same
  130  interrupted (^C): the partial results and report are kept
"""
EXIT_TARGET_FAILED = 3
EXIT_INTERRUPTED = 130


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report.build import build_report
    from harness.run.runner import RunOptions, run_scenario

    scenario = load_scenario(args.scenario).with_overrides(
        targets=_split(args.targets), driver=args.driver, model=args.model, device=args.device)
    for driver in scenario.drivers or (scenario.driver,):
        _check_names(driver, [t.name for t in scenario.targets])
    _check_cores(scenario.cpu_affinity)
    opts = RunOptions(results_root=Path(args.results), reports_root=Path(args.reports),
                      scenario_file=str(args.scenario))
    try:
        run_dir = run_scenario(scenario, opts)
    except KeyboardInterrupt:
        partial = _latest_run(opts.results_root)
        if partial is not None:
            report = build_report(partial, opts.reports_root)
            print(f"patternbench: partial report {report}", file=sys.stderr)
        return EXIT_INTERRUPTED
    report = build_report(run_dir, opts.reports_root)
    print(f"results: {run_dir}")
    print(f"report:  {report}")
    return EXIT_TARGET_FAILED if failed_targets(run_dir) else 0


def failed_targets(run_dir: Path) -> list[str]:
    """Labels of the run's targets that failed (did not start, or died during a point)."""
    from harness.summary.record import read_summary

    summary = read_summary(RunDir(run_dir).summary)
    return [label for label, info in summary.targets.items() if info.status != "ok"]


def _latest_run(root: Path) -> Path | None:
    runs = sorted((p for p in root.iterdir() if RunDir(p).manifest.exists()),
                  key=lambda p: p.stat().st_mtime) if root.exists() else []
    return runs[-1] if runs else None


def _check_names(driver: str, targets: list[str]) -> None:
    from harness.drivers import DRIVERS
    from targets import TARGETS

    if driver not in DRIVERS:
        raise ScenarioError(f"unknown driver {driver!r}; choose one of {sorted(DRIVERS)}")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ScenarioError(f"unknown target(s) {unknown}; see `patternbench list`")
    if driver == "k6":  # a missing binary is a one-line message before anything starts
        from harness.drivers.k6.driver import K6NotFound, k6_binary

        try:
            k6_binary()
        except K6NotFound as exc:
            raise ScenarioError(str(exc)) from None


def cmd_calibrate(args: argparse.Namespace) -> int:
    from harness.drivers import DRIVERS
    from harness.run.calibrate import CalibrateOptions, calibrate, table

    drivers = _split(args.drivers) or []
    unknown = [d for d in drivers if d not in DRIVERS]
    if not drivers or unknown:
        raise ScenarioError(f"--drivers: unknown {unknown}; choose from {sorted(DRIVERS)}")
    for driver in drivers:
        _check_names(driver, ["echo"])
    if args.concurrency < 1 or args.tokens < 1 or args.duration <= 0:
        raise ScenarioError("--concurrency and --tokens must be >= 1, --duration > 0")
    opts = CalibrateOptions(drivers=tuple(drivers), concurrency=args.concurrency,
                            tokens=args.tokens, duration_s=args.duration,
                            results_root=Path(args.results), reports_root=Path(args.reports),
                            pin=not args.no_pin)
    data = calibrate(opts)
    print(table(data))
    print(f"calibration: {calibration_path(opts.results_root)}")
    return 0


def _check_cores(affinity: Mapping[str, Sequence[int]]) -> None:
    usable = os.sched_getaffinity(0)
    for role, cores in affinity.items():
        missing = sorted(set(cores) - usable)
        if missing:
            raise ScenarioError(f"cpu_affinity.{role} names core(s) {missing}, but this process "
                                f"may only use cores {sorted(usable)}")


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import build_report
    from harness.summary.record import SummaryError, read_summary

    run_dir = Path(args.run)
    if not RunDir(run_dir).summary.exists():
        print(f"patternbench: {run_dir} has no summary.json (is it a results/<run> folder?)",
              file=sys.stderr)
        return 2
    try:
        read_summary(RunDir(run_dir).summary)
    except SummaryError as exc:
        print(f"patternbench: {run_dir}: {exc}", file=sys.stderr)
        return 2
    print(build_report(run_dir, Path(args.reports)))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from harness.gate.command import GateOptions, run_gate
    from harness.gate.outputs import table, write_outputs

    opts = GateOptions(run=Path(args.run), baseline=Path(args.baseline) if args.baseline else None,
                       baselines_root=Path(args.baselines), inconclusive=args.inconclusive,
                       skip_relative_on_mismatch=args.skip_relative_on_mismatch)
    report = run_gate(opts)
    print(table(report))
    for path in write_outputs(opts.run, report):
        print(f"wrote {path}")
    print(f"gate: exit {report.exit_code} (baseline: {report.baseline or 'none'})")
    return report.exit_code


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.gate.baseline import load_baseline, save_baseline, spread_lines

    path = save_baseline([Path(r) for r in args.runs], Path(args.baselines))
    saved = load_baseline(path)
    print(f"baseline: {path} ({saved.runs} runs per point)")
    for line in spread_lines(saved):
        print(f"  {line}")
    if saved.runs < 3:
        print("patternbench: warning: fewer than 3 runs: relative gates and compare cannot "
              "judge a change between runs by this baseline's noise", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from harness.drivers import DRIVERS
    from targets import TARGETS

    print("targets:")
    for name, info in TARGETS.items():
        print(f"  {name:28s} {info.pattern}")
    print("drivers:")
    for name in DRIVERS:
        print(f"  {name}")
    print("scenarios:")
    for path in sorted(Path(args.scenarios).glob("*.toml")):
        try:
            desc = load_scenario(path).description.splitlines()[0:1]
        except (ScenarioError, IndexError):
            desc = []
        print(f"  {path!s:36s} {desc[0] if desc else ''}")
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from harness.run.capacity_url import EndpointOptions, parse_slo, run_endpoint

    given = {"model": args.model, "api_key": args.api_key, "api": args.api,
             "slo": parse_slo(args.slo) if args.slo else None, "share": args.share,
             "budget_s": args.budget_s, "stream": args.stream, "max_level": args.max_concurrency,
             "duration_s": args.duration, "tokenizer": args.tokenizer,
             "prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens}
    opts = EndpointOptions(url=args.url, results_root=Path(args.results),
                           reports_root=Path(args.reports),
                           **{k: v for k, v in given.items() if v is not None})
    answer, run_dir, report = run_endpoint(opts)
    print(f"{answer}\nresults: {run_dir}\nreport:  {report}")
    return EXIT_TARGET_FAILED if failed_targets(run_dir) else 0


def _capacity_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cap = sub.add_parser("capacity", help="capacity under an SLO of any OpenAI-compatible URL")
    cap.add_argument("url", help="base URL of the server, e.g. http://127.0.0.1:8000")
    cap.add_argument("--model", help="model name the server serves (sent in requests)")
    cap.add_argument("--api-key", help="sent as Authorization: Bearer ...")
    cap.add_argument("--api", choices=["completions", "chat"], help="default completions")
    cap.add_argument("--slo", help="limits as key=ms pairs (default ttft_ms=500,tpot_ms=50)")
    cap.add_argument("--share", type=float, help="share of requests within the SLO (0.9)")
    cap.add_argument("--budget-s", type=float, help="time budget of the search, s (120)")
    cap.add_argument("--stream", action=argparse.BooleanOptionalAction, help="stream (yes)")
    cap.add_argument("--max-concurrency", type=int, help="highest level searched (64)")
    cap.add_argument("--duration", type=float, help="measured seconds per level (5)")
    cap.add_argument("--prompt-tokens", type=int, help="tokens in each prompt (128)")
    cap.add_argument("--output-tokens", type=int, help="tokens asked of each answer (64)")
    cap.add_argument("--tokenizer", help="model spec whose tokenizer builds the prompts "
                     "(default tiny: GPT-2 BPE)")
    cap.add_argument("--results", default="results", help="results root (default results/)")
    cap.add_argument("--reports", default="reports", help="reports root (default reports/)")


def cmd_serve(args: argparse.Namespace, extra: list[str]) -> int:
    from targets.__main__ import main as serve_main

    serve_main([args.target, *extra])
    return 0


def _gate_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`gate` and `baseline save`."""
    gate = sub.add_parser("gate", help="judge a run's [gates]: exit 0 pass, 1 regression, "
                                       "2 cannot judge")
    gate.add_argument("run", help="a results/<run> folder")
    gate.add_argument("--baseline", help="a run folder or a saved baseline file (default: the "
                                         "saved baseline of the run's scenario and machine kind)")
    gate.add_argument("--baselines", default="results/baselines", help="saved baselines root")
    gate.add_argument("--inconclusive", choices=("pass", "fail", "judge"), default="judge",
                      help="what an inconclusive gate counts as (default judge: exit 2)")
    gate.add_argument("--skip-relative-on-mismatch", action="store_true",
                      help="report relative gates as skipped when the baseline is missing or "
                           "from another machine kind or model (in-run ratios and absolute "
                           "gates are still judged)")
    base = sub.add_parser("baseline", help="save runs as their scenario's baseline",
                          description="Save runs of one scenario (same settings, machine kind "
                          "and model) as its baseline on this machine kind. Give 3 or more "
                          "unchanged runs: their spread is the run-to-run noise relative gates "
                          "and compare judge a change by; one run cannot judge a change between "
                          "runs.")
    base.add_argument("action", choices=("save",))
    base.add_argument("runs", nargs="+", metavar="run", help="results/<run> folders")
    base.add_argument("--baselines", default="results/baselines", help="saved baselines root")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="patternbench", description=DESCRIPTION,
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write results + an HTML report",
                         epilog=EXIT_CODES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("scenario", help="scenario TOML file, e.g. scenarios/default.toml")
    run.add_argument("--targets", help="comma-separated target names or labels to run")
    run.add_argument("--driver", help="load driver (overrides the scenario's)")
    run.add_argument("--model", help="model spec: a preset (tiny), the real model "
                     "(smollm2-135m), a local HF folder, or sim:...")
    run.add_argument("--device", help="auto (CUDA when present), cpu or cuda")
    run.add_argument("--results", default="results", help="results root (default results/)")
    run.add_argument("--reports", default="reports", help="reports root (default reports/)")

    rep = sub.add_parser("report", help="rebuild the HTML report of a stored run")
    rep.add_argument("run", help="a results/<run> folder")
    rep.add_argument("--reports", default="reports", help="reports root (default reports/)")

    cal = sub.add_parser("calibrate", help="measure each driver's own overhead (echo target)")
    cal.add_argument("--drivers", default="builtin,k6,locust", help="comma-separated drivers")
    cal.add_argument("--concurrency", type=int, default=64, help="concurrent streams (64)")
    cal.add_argument("--tokens", type=int, default=16, help="tokens per response (16)")
    cal.add_argument("--duration", type=float, default=6.0, help="measured seconds per driver")
    cal.add_argument("--no-pin", action="store_true",
                     help="do not pin the echo target and the driver to separate cores")
    cal.add_argument("--results", default="results", help="results root (default results/)")
    cal.add_argument("--reports", default="reports", help="reports root (default reports/)")

    _gate_parsers(sub)

    lst = sub.add_parser("list", help="list targets, drivers and scenarios")
    lst.add_argument("--scenarios", default="scenarios", help="folder of scenario files")

    srv = sub.add_parser("serve", help="run one target in the foreground",
                         description="Run one target; other flags go to `python -m targets` "
                                     "(--port, --model, -o key=value, --api-key ...).")
    srv.add_argument("target", help="target name (see `patternbench list`)")
    _capacity_parser(sub)
    cli_parity.add_parser(sub)
    cli_reports.add_parsers(sub)  # compare, publish, export
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "serve":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run, "report": cmd_report, "calibrate": cmd_calibrate, "list": cmd_list,
        "capacity": cmd_capacity, "gate": cmd_gate, "baseline": cmd_baseline,
        "parity": cli_parity.run,
    }
    try:
        if args.command in cli_reports.COMMANDS:
            return cli_reports.run(args)
        if args.command in commands:
            return commands[args.command](args)
        return cmd_serve(args, extra)
    except (ScenarioError, BaselineError) as exc:
        print(f"patternbench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED

