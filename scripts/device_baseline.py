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
import json
import shutil
import sys
from pathlib import Path
from typing import Any

BATCHING = "fastapi_batching"


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _fmt(value: Any, spec: str = ".0f") -> str:
    return "-" if not isinstance(value, (int, float)) else format(value, spec)


def headline(point: dict[str, Any]) -> str:
    tel = point.get("telemetry") or {}
    gpu = tel.get("gpu") or {}
    gpu_text = (f"GPU util mean {_fmt(_get(gpu, 'util_pct', 'mean'))}% "
                f"max {_fmt(_get(gpu, 'util_pct', 'max'))}% "
                f"mem {_fmt(gpu.get('mem_used_peak_mb'))} MiB "
                f"energy {_fmt(gpu.get('energy_j'))} J "
                f"{_fmt(gpu.get('tokens_per_j'), '.2f')} tok/J"
                if gpu.get("available") else f"no GPU ({gpu.get('reason')})")
    return (f"{point.get('target')} {point.get('point')}: "
            f"ok {_get(point, 'requests', 'ok')}/{_get(point, 'requests', 'total')} "
            f"{_fmt(_get(point, 'throughput', 'output_tok_s'))} tok/s "
            f"TTFT p50 {_fmt(_get(point, 'ttft_ms', 'p50'))} p99 "
            f"{_fmt(_get(point, 'ttft_ms', 'p99'))} ms | {gpu_text} | "
            f"target CPU {_fmt(_get(tel, 'target', 'cpu_pct', 'mean'))}% "
            f"/health p99 {_fmt(_get(tel, 'health', 'latency_ms', 'p99'), '.1f')} ms")


def qualifies(points: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether the run is a GPU baseline: fastapi_batching ran, answered, and used the GPU."""
    batching = [p for p in points if p.get("target_name", p.get("target")) == BATCHING]
    if not batching:
        return False, f"{BATCHING} has no load point in this run"
    if any(not _get(p, "requests", "ok") for p in batching):
        return False, f"a {BATCHING} point answered no request"
    utils = [_get(p, "telemetry", "gpu", "util_pct", "max") for p in batching]
    if not any(isinstance(u, (int, float)) and u > 0 for u in utils):
        reason = _get(batching[0], "telemetry", "gpu", "reason")
        return False, f"{BATCHING} shows no GPU utilization ({reason or 'util 0'})"
    return True, f"{BATCHING} GPU utilization max {max(u for u in utils if u is not None):.0f}%"


def report_page(run_dir: Path, reports: Path) -> Path | None:
    page = reports / run_dir.name / "index.html"
    if page.exists():
        return page
    try:
        import matplotlib  # noqa: F401 - only to know whether the report can be drawn here
    except ImportError:
        return None
    from harness.report import build_report

    return build_report(run_dir, reports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--reports", type=Path, default=Path("reports"))
    parser.add_argument("--dest", type=Path, default=Path("results/baselines/gpu"))
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args()
    summary = json.loads((args.run_dir / "summary.json").read_text())
    points = [p for p in summary.get("points", []) if isinstance(p, dict)]
    for point in points:
        print(headline(point))
    ok, why = qualifies(points)
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
