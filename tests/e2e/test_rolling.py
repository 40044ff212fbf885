"""End to end: a rolling deploy through the real CLI, real replicas (each its own process on its
own port) behind a real HAProxy, and the builtin driver. A SIGKILL without gating cuts the
streams in flight; a drain with gating cuts none and fails nothing. Every process the run
started (balancer, replicas) is gone after the run, after ^C and after a replica crashed: each
carries the test's own environment marker, and /proc is searched for it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.samples import read_samples
from harness.summary.record import PointSummary
from harness.summary.rolling import RollingSummary
from tests.signals import default_sigint
from tests.summaries import read_checked
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
MARK = "PATTERNBENCH_TEST_MARK"
pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v haproxy"], capture_output=True,
                   check=False).returncode != 0,
    reason="haproxy is not installed (apt-get install haproxy); .ci/run installs it")

SCENARIO = """
name = "rolling_e2e"
model = "sim:ttft_ms=10,tpot_ms=20,gil=release"
seed = 7
timeout_s = 30

[workload]
prompt_tokens = 16
output_tokens = 48
stream = true
ignore_eos = true

[load]
kind = "closed"
concurrency = [4]
duration_s = 120
warmup_s = 0

[fault]
kind = "rolling"
replicas = 2
at_s = {at_s}
after_s = 1.0
"""
TARGET = """
[[targets]]
name = "fastapi_threadpool"
label = "{label}"
options = {{ workers = 4 }}
{extra}
"""


def scenario(at_s: float, *targets: tuple[str, str]) -> str:
    return SCENARIO.format(at_s=at_s) + "".join(
        TARGET.format(label=label, extra=extra) for label, extra in targets)


def marked(mark: str) -> list[int]:
    """Pids of the processes whose environment carries `mark` (this test's run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if f"{MARK}={mark}".encode() in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def start_cli(tmp_path: Path, text: str, mark: str) -> subprocess.Popen[str]:
    path = tmp_path / "rolling.toml"
    path.write_text(text)
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(path), "--results",
         str(tmp_path / "results"), "--reports", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, MARK: mark}, preexec_fn=default_sigint)


def finish(cli: subprocess.Popen[str], mark: str) -> tuple[int, str]:
    _, err = cli.communicate(timeout=240)
    assert marked(mark) == [], f"left running after the run:\n{err[-3000:]}"
    return cli.returncode, err


def deploy_of(point: PointSummary) -> RollingSummary:
    assert point.fault is not None and point.fault.rolling is not None
    return point.fault.rolling


def run_folder(tmp_path: Path) -> Path:
    (run_dir,) = list((tmp_path / "results").iterdir())
    return run_dir


def test_a_kill_cuts_streams_and_a_gated_drain_cuts_none(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    cli = start_cli(tmp_path, scenario(2.0, ("kill", 'fault = { stop = "kill", gate = false }'),
                                       ("gated", ""), ("old_first", "fault = { surge = false }")),
                    mark)
    code, err = finish(cli, mark)
    assert code == 0, err[-3000:]
    run_dir = run_folder(tmp_path)
    points = {p.target: p for p in read_checked(run_dir).points}
    kill, gated = (deploy_of(points[t]) for t in ("kill", "gated"))
    for r in (kill, gated):
        assert r.completed and r.load_covered and len(r.replacements) == 2
        assert all(x.new_pid and x.exit_at_s is not None for x in r.replacements)
        assert r.deploy_s is not None and r.deploy_s > 0
        assert r.steady.ok > 0 and r.deploy.ok > 0  # the load ran before and through it
    assert kill.in_flight > 0 and kill.truncated > 0
    assert kill.truncated == sum(x.truncated for x in kill.replacements) == kill.failed.truncated
    assert all(x.signal == "SIGKILL" and x.exit_code == -9 for x in kill.replacements)
    samples = read_samples(run_dir / "samples" / "kill" / "c4.jsonl")
    assert sum(s.status == "truncated" for s in samples) >= kill.truncated
    assert gated.in_flight > 0  # streams were on each old replica when it was signalled
    assert gated.truncated == 0 and gated.failed.total == 0 and gated.failed_requests == 0
    for x in gated.replacements:
        assert x.signal == "SIGTERM" and x.exit_code == 0 and x.drain_s and x.drain_s > 0
        assert x.out_of_rotation_at_s is not None and x.signal_at_s is not None
        assert x.out_of_rotation_at_s <= x.signal_at_s  # gated: out of rotation first
    old_first = deploy_of(points["old_first"])  # maxSurge 0: each old replica retired first
    assert old_first.completed and old_first.truncated == 0 and old_first.failed.total == 0
    for x in old_first.replacements:
        assert x.exit_at_s is not None and x.ready_at_s is not None
        assert x.exit_at_s <= x.started_at_s + 0.001 < x.ready_at_s  # then the new one started
    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "Rolling deploy" in html
    assert (f"kill, no drain (SIGKILL): {kill.truncated} truncated of {kill.in_flight} streams "
            "in flight across 2 replacements") in html
    assert (f"gated, graceful drain with readiness gating: 0 truncated of {gated.in_flight} "
            "streams in flight across 2 replacements; 0 requests failed") in html


def test_every_process_is_gone_after_ctrl_c_during_the_deploy(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    cli = start_cli(tmp_path, scenario(1.0, ("gated", "")), mark)
    new_replica = tmp_path / "results"
    wait_for(lambda: any(new_replica.glob("*/logs/gated.r2.log")), timeout_s=120,
             interval_s=0.05, what="the deploy to start the first new replica")
    cli.send_signal(signal.SIGINT)
    code, err = finish(cli, mark)
    assert code == 130, err[-3000:]
    assert read_checked(run_folder(tmp_path)).interrupted


def test_a_replica_that_crashes_is_replaced_and_nothing_is_left(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    cli = start_cli(tmp_path, scenario(4.0, ("gated", "")), mark)
    results = tmp_path / "results"
    wait_for(lambda: any(results.glob("*/logs/gated.haproxy.cfg")), timeout_s=120,
             interval_s=0.05, what="the balancer's configuration")
    cfg = next(results.glob("*/logs/gated.haproxy.cfg")).read_text()
    port = re.search(r"server r1 127\.0\.0\.1:(\d+) check\n", cfg)
    assert port is not None
    crashed = [pid for pid in marked(mark)
               if f"--port\0{port[1]}\0".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(crashed) == 1
    os.kill(crashed[0], signal.SIGKILL)  # r1 crashes before its turn
    code, err = finish(cli, mark)
    assert code == 0, err[-3000:]
    (point,) = read_checked(run_folder(tmp_path)).points
    rolling = deploy_of(point)
    assert rolling.completed
    first, second = rolling.replacements
    assert first.signal == "SIGTERM" and first.exit_code == 0
    assert second.old_pid == crashed[0] and second.signal is None and second.exit_code == -9
