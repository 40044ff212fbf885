"""Measure the relative gate's two error rates on this machine (issue 12, point 3).

One baseline run, then `--reruns` runs of the same sim target unchanged (each failing gate is a
false failure) and `--reruns` runs with the sim model `--slower` times slower per token (each
failing gate is a detection). Every run is a real `patternbench run` of a short closed-loop
point (real target process, real driver); every decision is `harness.gate.check` on the run's
summary against the baseline's, with the gates below. The slower runs use another sim spec,
hence another model hash, so they are judged with the pure check (the gate command would
refuse the model mismatch, exit 2).

    flock /tmp/patternbench-measure.lock .venv/bin/python scripts/gate_error_rates.py --reruns 10

prints one line per run and the counts: false failures (unchanged runs that failed), detections
(slower runs that failed), and how many were inconclusive.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from harness.gate.check import Baseline, GateResult, check_gates
from harness.gate.command import exit_code
from harness.gate.spec import parse_gates
from harness.run.runner import RunOptions, run_scenario
from harness.scenario.load import parse_scenario
from harness.summary.record import RunSummary, read_summary

GATES = {"*.c4.tpot_ms.p50": "<= +10%", "*.c4.throughput.output_tok_s": ">= -10%"}


def scenario(tpot_ms: float, ttft_ms: float, duration_s: float) -> dict[str, Any]:
    """A one-target, one-point sim scenario: `tpot_ms` per token after the first."""
    return {
        "name": "gate_error_rates", "seed": 12,
        "model": f"sim:ttft_ms={ttft_ms:g},tpot_ms={tpot_ms:g},gil=release",
        "cpu_affinity": {"target": [0], "driver": [1]}, "timeout_s": 60,
        "workload": {"prompt_tokens": 32, "output_tokens": 32, "stream": True},
        "load": {"kind": "closed", "concurrency": [4], "duration_s": duration_s,
                 "warmup_s": 0.5},
        "targets": [{"name": "fastapi_threadpool", "options": {"replicas": 1, "workers": 4}}],
        "gates": GATES,
    }


def measure(data: dict[str, Any], root: Path) -> RunSummary:
    run = run_scenario(parse_scenario(data), RunOptions(results_root=root, out=io.StringIO()))
    return read_summary(run / "summary.json")


def line(label: str, results: list[GateResult]) -> str:
    parts = [f"{r.subject.split('.', 2)[2]} {r.change_pct:+.1f}% {r.verdict}"
             if r.change_pct is not None else f"{r.subject} {r.verdict} ({r.reason})"
             for r in results]
    return f"{label:10s} exit {exit_code(results)}  " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reruns", type=int, default=10)
    parser.add_argument("--tpot-ms", type=float, default=4.0)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--slower", type=float, default=1.15)
    parser.add_argument("--duration-s", type=float, default=3.0)
    args = parser.parse_args()
    gates = parse_gates(GATES)
    with tempfile.TemporaryDirectory(prefix="gate-error-rates-") as tmp:
        root = Path(tmp)
        base = Baseline(measure(scenario(args.tpot_ms, args.ttft_ms, args.duration_s), root))
        outcomes: dict[str, Counter[int]] = {"unchanged": Counter(), "slower": Counter()}
        for i in range(2 * args.reruns):
            kind = "unchanged" if i % 2 == 0 else "slower"  # interleaved: drift hits both
            tpot = args.tpot_ms * (args.slower if kind == "slower" else 1.0)
            summary = measure(scenario(tpot, args.ttft_ms, args.duration_s), root)
            results = check_gates(gates, summary, base)
            outcomes[kind][exit_code(results)] += 1
            print(line(f"{kind} {i // 2 + 1}", results), flush=True)
    same, slow = outcomes["unchanged"], outcomes["slower"]
    print(f"unchanged: {same[1]} false failures, {same[2]} inconclusive, {same[0]} passed "
          f"of {args.reruns}")
    print(f"{args.slower:g}x slower per token: {slow[1]} detected (exit 1), {slow[2]} "
          f"inconclusive, {slow[0]} passed of {args.reruns}")


if __name__ == "__main__":
    main()
