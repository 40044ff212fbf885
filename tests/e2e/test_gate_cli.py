"""End to end: real short runs of a sim target through `patternbench run`, then `patternbench
gate` on them against a baseline saved from three runs: an unchanged rerun passes (exit 0), an
injected regression (PATTERNBENCH_INJECT_SLOWDOWN=4: the model works four times as long, the
scenario and model unchanged) fails (exit 1), and the same slowdown through a changed setting
(4 threads → 1) is refused as another scenario (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
name = "gate_e2e"
model = "sim:ttft_ms=40,tpot_ms=2,gil=release"
seed = 12
timeout_s = 60

[client]
max_dispatch_lag_ms = 100  # the suite runs beside other processes: driver lag is not the point

[workload]
prompt_tokens = 16
output_tokens = 12

[load]
kind = "closed"
concurrency = [4]
duration_s = 2
warmup_s = 0.5

[gates]
"flask_threads.c4.ttft_ms.p50" = "<= +150%"
"*.c4.requests.conn_error" = "<= 0"
"flask_threads.c4.e2e_ms.p50" = "< 5000"

[[targets]]
name = "flask_threads"
options = {{ threads = {threads} }}
"""


def cli(*args: str, slowdown: float = 1.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATTERNBENCH_INJECT_SLOWDOWN": str(slowdown)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, env=env)


def run(tmp: Path, name: str, threads: int = 4, slowdown: float = 1.0) -> Path:
    scenario = tmp / f"{name}.toml"
    scenario.write_text(SCENARIO.format(threads=threads))
    proc = cli("run", str(scenario), "--results", str(tmp / name), "--reports",
               str(tmp / "reports"), slowdown=slowdown)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = [line.removeprefix("results: ") for line in proc.stdout.splitlines()
                 if line.startswith("results: ")]
    return Path(folder)


def test_gate_passes_an_unchanged_rerun_and_fails_an_injected_regression(tmp_path: Path
                                                                           ) -> None:
    bases = [str(run(tmp_path, f"base{i}")) for i in range(3)]
    saved = cli("baseline", "save", *bases, "--baselines", str(tmp_path / "baselines"))
    assert saved.returncode == 0, saved.stderr
    same, slower = run(tmp_path, "same"), run(tmp_path, "slower", slowdown=4.0)
    edited = run(tmp_path, "edited", threads=1)

    ok = cli("gate", str(same), "--baselines", str(tmp_path / "baselines"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = cli("gate", str(slower), "--baselines", str(tmp_path / "baselines"))
    assert bad.returncode == 1, bad.stdout + bad.stderr

    report = json.loads((slower / "gate.json").read_text())
    verdicts = {r["subject"]: r["verdict"] for r in report["results"]}
    assert verdicts == {"flask_threads.c4.ttft_ms.p50": "fail",
                        "flask_threads.c4.requests.conn_error": "pass",
                        "flask_threads.c4.e2e_ms.p50": "pass"}
    failed = report["results"][0]
    assert failed["change_pct"] > 150 and failed["change_ci_pct"][0] > 150
    assert "❌ FAIL" in (slower / "gate.md").read_text()
    assert json.loads((slower / "manifest.json").read_text())["injected_slowdown"] == 4.0

    other = cli("gate", str(edited), "--baselines", str(tmp_path / "baselines"))
    assert other.returncode == 2 and "targets[0].options.threads 1 vs 4" in other.stdout
