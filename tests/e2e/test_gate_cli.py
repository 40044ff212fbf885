"""End to end: real short runs of a sim target through `patternbench run`, then `patternbench
gate` on them: an unchanged rerun passes (exit 0), an injected regression (the thread pool shrunk
from 4 to 1 under 4 concurrent streams, so requests queue for a thread) fails (exit 1)."""

from __future__ import annotations

import json
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
"flask_threads.c4.ttft_ms.p50" = "<= +100%"
"*.c4.requests.conn_error" = "<= 0"
"flask_threads.c4.e2e_ms.p50" = "< 5000"

[[targets]]
name = "flask_threads"
options = {{ threads = {threads} }}
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def run(tmp: Path, name: str, threads: int) -> Path:
    scenario = tmp / f"{name}.toml"
    scenario.write_text(SCENARIO.format(threads=threads))
    proc = cli("run", str(scenario), "--results", str(tmp / name), "--reports",
               str(tmp / "reports"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = [line.removeprefix("results: ") for line in proc.stdout.splitlines()
                 if line.startswith("results: ")]
    return Path(folder)


def test_gate_passes_an_unchanged_rerun_and_fails_an_injected_regression(tmp_path: Path
                                                                           ) -> None:
    base = run(tmp_path, "base", threads=4)
    saved = cli("baseline", "save", str(base), "--baselines", str(tmp_path / "baselines"))
    assert saved.returncode == 0, saved.stderr
    same, slower = run(tmp_path, "same", threads=4), run(tmp_path, "slower", threads=1)

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
    assert failed["change_pct"] > 100 and failed["change_ci_pct"][0] > 100
    assert "❌ FAIL" in (slower / "gate.md").read_text()
