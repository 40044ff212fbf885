"""End to end: a scenario's `[fault]` through the real CLI, a real target and the builtin
driver. SIGTERM mid-load: the target drains its streams and exits, the point is not a failure,
and its `fault` record and the report's shutdown row hold the drain's figures. Disconnect: half
the streams are abandoned after 4 tokens, the continuous-batching target on the tiny model is
idle again after the load, and the record and the report's row say so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.samples import read_samples
from tests.summaries import read_checked

ROOT = Path(__file__).resolve().parents[2]

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


DISCONNECT = """
name = "disconnect_e2e"
model = "tiny"
seed = 11
timeout_s = 60

[workload]
prompt_tokens = 16
output_tokens = 64
stream = true
temperature = 0.0
ignore_eos = true

[load]
kind = "closed"
concurrency = [4]
duration_s = 3
warmup_s = 0

[fault]
kind = "disconnect"
after_tokens = 4
share = 0.5

[[targets]]
name = "fastapi_batching"
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
    summary = read_checked(run_dir)
    assert summary.targets["fastapi_threadpool"].status == "ok"
    (point,) = summary.points
    assert point.failure is None and "target_failed" not in point.flags
    fault = point.fault
    assert fault is not None and fault.signal_at_s is not None and fault.exit_at_s is not None
    assert fault.drain_s is not None and fault.drain_s > 0
    assert fault.exit_at_s == pytest.approx(fault.signal_at_s + fault.drain_s)
    assert fault.in_flight_at_signal is not None and fault.cut is not None
    assert fault.sent_after is not None and fault.refused_after is not None
    assert fault.in_flight_at_signal > 0
    assert fault.completed + fault.cut == fault.in_flight_at_signal
    assert fault.completed > 0  # ~1 s streams, a 30 s drain timeout: they are let finish
    assert 0 <= fault.refused_after <= fault.sent_after
    assert point.requests.ok >= fault.completed  # the load ran, then ended at the exit

    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "shutdown: SIGTERM mid-load" in html
    assert f"of {fault.in_flight_at_signal} streams in flight at the SIGTERM" in html


def test_abandoned_streams_are_no_errors_and_the_target_is_idle_again(tmp_path: Path) -> None:
    code, err, run_dir = run_cli(tmp_path, DISCONNECT)
    assert code == 0, err[-3000:]
    (point,) = read_checked(run_dir).points
    assert point.failure is None and "target_failed" not in point.flags
    fault = point.fault
    assert fault is not None and fault.kind == "disconnect" and fault.after_tokens == 4
    (path,) = (run_dir / "samples" / "fastapi_batching").glob("*.jsonl")
    samples = read_samples(path)
    gone = [s for s in samples if s.status == "abandoned"]
    assert gone and fault.abandoned == len(gone) and fault.requests == len(samples)
    assert all(len(s.token_times) >= 4 and s.failed_at is not None
               and s.failed_at == pytest.approx(s.extra.abandoned_at, abs=1e-6) for s in gone)
    assert all(s.ok for s in samples if s.status != "abandoned")  # nothing else failed
    assert point.requests.abandoned > 0 and point.requests.total == point.requests.ok > 0
    assert fault.completed == len(samples) - len(gone)
    assert fault.metrics_source == "patternbench" and fault.in_flight_left == 0
    assert fault.in_flight_zero_at_s is not None and fault.load_end_at_s is not None
    assert fault.in_flight_zero_after_load_s is not None
    assert fault.in_flight_zero_after_s is not None and fault.last_abandon_at_s is not None
    assert fault.received_tokens is not None
    assert fault.received_tokens >= 64 * fault.completed + 4 * len(gone)
    assert fault.generated_tokens is not None and fault.wasted_tokens is not None
    assert fault.wasted_tokens == fault.generated_tokens - fault.received_tokens >= 0

    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "disconnect: clients abandon streams" in html
    assert f"{fault.abandoned} of {fault.requests} streams abandoned after 4 tokens" in html
    assert "the server was idle again" in html
