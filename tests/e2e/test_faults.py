"""End to end: a scenario's `[fault]` through the real CLI, a real sim target and the builtin
driver. SIGTERM mid-load: the target drains its streams and exits, the point is not a failure,
and its `fault` record and the report's shutdown row hold the drain's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.summary import read_summary

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "summary.schema.json"

SHUTDOWN = """
name = "shutdown_e2e"
model = "sim:ttft_ms=10,tpot_ms=20,gil=release"
seed = 5
timeout_s = 30

[workload]
prompt_tokens = 16
output_tokens = 48
stream = true
ignore_eos = true

[load]
kind = "closed"
concurrency = [4]
duration_s = 20
warmup_s = 0

[fault]
kind = "sigterm"
at_s = 1.0

[[targets]]
name = "fastapi_threadpool"
options = { workers = 4 }
"""


def run_cli(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    scenario = tmp_path / "fault.toml"
    scenario.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--results",
         str(tmp_path / "results"), "--reports", str(tmp_path / "reports")],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    (run_dir,) = list((tmp_path / "results").iterdir())
    return done.returncode, done.stderr, run_dir


def test_sigterm_mid_load_drains_and_is_recorded_not_failed(tmp_path: Path) -> None:
    code, err, run_dir = run_cli(tmp_path, SHUTDOWN)
    assert code == 0, err[-3000:]
    jsonschema.validate(json.loads((run_dir / "summary.json").read_text()),
                        json.loads(SCHEMA.read_text()))
    summary = read_summary(run_dir / "summary.json")
    assert summary.targets["fastapi_threadpool"].status == "ok"
    (point,) = summary.points
    assert point.failure is None and "target_failed" not in point.flags
    fault = point.fault
    assert fault is not None and fault.signal_at_s is not None and fault.exit_at_s is not None
    assert fault.drain_s is not None and fault.drain_s > 0
    assert fault.exit_at_s == pytest.approx(fault.signal_at_s + fault.drain_s)
    assert fault.in_flight_at_signal > 0
    assert fault.completed + fault.cut == fault.in_flight_at_signal
    assert fault.completed > 0  # ~1 s streams, a 30 s drain timeout: they are let finish
    assert 0 <= fault.refused_after <= fault.sent_after
    assert point.requests.ok >= fault.completed  # the load ran, then ended at the exit

    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "shutdown: SIGTERM mid-load" in html
    assert f"of {fault.in_flight_at_signal} streams in flight at the SIGTERM" in html
