"""Check a finished GPU run and keep it as the committed baseline (run by scripts/device-run).

    python scripts/device_baseline.py RUN_DIR --reports REPORTS --dest results/baselines/gpu \
        [--require-gpu]

Prints one line per target × load point (output tok/s, TTFT p50/p99, GPU utilization,
energy, tokens per joule, target CPU, /health p99). The run qualifies when every point of
`fastapi_batching` answered requests and its GPU utilization was above zero at some point.
Then `summary.json`, `manifest.json` and the report (`report.html`, built here when missing and
matplotlib is importable) are copied into `--dest`. With `--require-gpu`, a run that does not
qualify exits 3 and writes nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from harness.summary.record import Distribution, PointSummary, SummaryError, read_summary

BATCHING = "fastapi_batching"


def _fmt(value: float | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def _stat(dist: Distribution | None, name: str) -> float | None:
    return None if dist is None else float(getattr(dist, name))


def headline(point: PointSummary) -> str:
    tel = point.telemetry
    gpu = tel.gpu if tel else None
    gpu_text = (f"GPU util mean {_fmt(_stat(gpu.util_pct, 'mean'))}% "
                f"max {_fmt(_stat(gpu.util_pct, 'max'))}% "
                f"mem {_fmt(gpu.mem_used_peak_mb)} MiB energy {_fmt(gpu.energy_j)} J "
                f"{_fmt(gpu.tokens_per_j, '.2f')} tok/J"
                if gpu and gpu.available else f"no GPU ({gpu.reason if gpu else 'no telemetry'})")
    return (f"{point.target} {point.point}: ok {point.requests.ok}/{point.requests.total} "
            f"{_fmt(point.throughput.output_tok_s)} tok/s "
            f"TTFT p50 {_fmt(_stat(point.ttft_ms, 'p50'))} p99 "
            f"{_fmt(_stat(point.ttft_ms, 'p99'))} ms | {gpu_text} | "
            f"target CPU {_fmt(_stat(tel.target.cpu_pct, 'mean') if tel else None)}% "
            f"/health p99 {_fmt(_stat(tel.health.latency_ms, 'p99') if tel else None, '.1f')} ms")


def qualifies(points: tuple[PointSummary, ...]) -> tuple[bool, str]:
    """Whether the run is a GPU baseline: fastapi_batching ran, answered, and used the GPU."""
    batching = [p for p in points if p.target_name == BATCHING]
    if not batching:
        return False, f"{BATCHING} has no load point in this run"
    if any(not p.requests.ok for p in batching):
        return False, f"a {BATCHING} point answered no request"
    utils = [u for p in batching if p.telemetry and (u := _stat(p.telemetry.gpu.util_pct, "max"))]
    if not utils:
        tel = batching[0].telemetry
        reason = tel.gpu.reason if tel else None
        return False, f"{BATCHING} shows no GPU utilization ({reason or 'util 0'})"
    return True, f"{BATCHING} GPU utilization max {max(utils):.0f}%"


def report_page(run_dir: Path, reports: Path) -> Path | None:
    page = reports / run_dir.name / "index.html"
    if page.exists():
        return page
    try:
        import matplotlib  # noqa: F401 - only to know whether the report can be drawn here
    except ImportError:
        return None
    from harness.report.build import build_report

    return build_report(run_dir, reports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--dest", type=Path, default=Path("results/baselines/gpu"))
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args()
    try:
        summary = read_summary(args.run_dir / "summary.json")
    except SummaryError as exc:
        print(f"device_baseline: {exc}", file=sys.stderr)
        return 2
    for point in summary.points:
        print(headline(point))
    ok, why = qualifies(summary.points)
    print(f"device_baseline: {'qualifies' if ok else 'does not qualify'}: {why}")
    if args.require_gpu and not ok:
        return 3
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "manifest.json"):
        shutil.copyfile(args.run_dir / name, args.dest / name)
    page = report_page(args.run_dir, args.reports)
    if page is None:
        print("device_baseline: matplotlib is missing here; build the report elsewhere with "
              f"`patternbench report {args.run_dir}` and copy it to {args.dest}/report.html")
    else:
        shutil.copyfile(page, args.dest / "report.html")
    print(f"device_baseline: wrote {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
