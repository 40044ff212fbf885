"""End to end: the harness survives its target. A sim target `kill -9`ed mid-run, and a run
stopped with ^C, through the real CLI, real target processes and the real builtin driver.

Nothing waits on a sleep: each test waits (`tests.waiting.wait_for`) for the first point's
samples file, which the runner writes once that point ended and the next one begins.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from harness.samples import read_samples
from harness.summary.record import read_summary
from tests.signals import default_sigint
from tests.summaries import read_checked
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = """
name = "death"
model = "sim:ttft_ms=10,tpot_ms=2,gil=release"
seed = 3
timeout_s = 30

[workload]
prompt_tokens = 16
output_tokens = 8
stream = true

[load]
kind = "closed"
concurrency = [1, 2, 3]
duration_s = {duration}
warmup_s = 0.2

[[targets]]
name = "fastapi_threadpool"
{more}
"""
STOP_S = 5  # a driver must stop sending within seconds of the verdict, not at the point's end


def start_run(tmp_path: Path, duration: float, more: str = "",
              driver: str = "builtin") -> subprocess.Popen[str]:
    scenario = tmp_path / "death.toml"
    scenario.write_text(f'driver = "{driver}"\n' + SCENARIO.format(duration=duration, more=more))
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--results",
         str(tmp_path / "results"), "--reports", str(tmp_path / "reports")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint)


def first_samples(tmp_path: Path, target: str) -> Path:
    """Wait until the first point's samples of `target` are written; the run folder."""
    results = tmp_path / "results"

    def written() -> bool:
        return any(results.glob(f"*/samples/{target}*/c1.jsonl"))

    wait_for(written, timeout_s=120, interval_s=0.05, what="the first point's samples")
    (run_dir,) = list(results.iterdir())
    return run_dir


def target_process(cli: subprocess.Popen[str]) -> psutil.Process:
    (target,) = [p for p in psutil.Process(cli.pid).children(recursive=True)
                 if "targets" in p.cmdline() and "fastapi_threadpool" in p.cmdline()]
    return target


def in_flight(target: psutil.Process) -> float:
    """The target's own in-flight gauge, read from its /metrics (its port from its argv)."""
    argv = target.cmdline()
    port = argv[argv.index("--port") + 1]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = [line.split()[-1] for line in text.splitlines()
              if line.startswith("patternbench_in_flight ")]
    return float(values[0]) if values else 0.0


def finish(cli: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    return cli.returncode, out, err


def killed_in_second_point(tmp_path: Path, driver: str = "builtin") -> tuple[Path, int, str]:
    """Run points that would last 30 s each if nothing stopped them, and `kill -9` the target
    once the second point's requests are in flight: the run folder, exit code and stderr."""
    cli = start_run(tmp_path, duration=30, driver=driver)
    run_dir = first_samples(tmp_path, "fastapi_threadpool")
    target = target_process(cli)
    wait_for(lambda: in_flight(target) > 0, timeout_s=60, interval_s=0.01,
             what="the second point's requests in flight")
    target.send_signal(signal.SIGKILL)
    code, _, err = finish(cli)
    return run_dir, code, err


def test_a_killed_target_fails_its_point_is_skipped_after_and_the_run_exits_3(
        tmp_path: Path) -> None:
    run_dir, code, err = killed_in_second_point(tmp_path)
    assert code == 3, err[-3000:]

    summary = read_checked(run_dir)
    info = summary.targets["fastapi_threadpool"]
    assert info.status == "failed" and info.failed_point == "c2"
    assert info.skipped == ("c3",)
    assert info.error is not None and "exited with code -9" in info.error
    (c2,) = [p for p in summary.points if p.point == "c2"]
    assert "target_failed" in c2.flags and c2.failure is not None
    assert c2.failure.first_error_at_s is not None
    assert c2.failure.detected_at_s - c2.failure.first_error_at_s < 5  # within seconds
    samples = read_samples(run_dir / "samples" / "fastapi_threadpool" / "c2.jsonl")
    failed = [s for s in samples if not s.ok]
    assert c2.failure.failed_requests == len(failed) < 200  # no spin: a bounded count
    assert not (run_dir / "samples" / "fastapi_threadpool" / "c3.jsonl").exists()
    assert "fastapi_threadpool failed during c2" in err

    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "Targets that did not run cleanly" in html
    assert "died during c2" in html and "Not run: c3" in html
    assert "exited with code -9" in html


@pytest.mark.parametrize("driver", ["k6", "locust"])
def test_k6_and_locust_are_stopped_soon_after_the_target_dies(tmp_path: Path,
                                                              driver: str) -> None:
    run_dir, code, err = killed_in_second_point(tmp_path, driver)
    assert code == 3, err[-3000:]
    summary = read_summary(run_dir / "summary.json")
    (c2,) = [p for p in summary.points if p.point == "c2"]
    assert "target_failed" in c2.flags and c2.failure is not None
    assert "exited with code -9" in c2.failure.reason
    (series,) = [d.name for d in (run_dir / "samples").iterdir()]
    samples = read_samples(run_dir / "samples" / series / "c2.jsonl")
    # the tool was stopped on the verdict: nothing sent long after it (the point was 30 s)
    assert max(s.sent_at for s in samples) - c2.failure.detected_at_s < STOP_S
    assert not (run_dir / "samples" / series / "c3.jsonl").exists()


def test_an_interrupted_run_says_so_and_lists_what_never_ran(tmp_path: Path) -> None:
    cli = start_run(tmp_path, duration=3, more='\n[[targets]]\nname = "flask_threads"\n')
    run_dir = first_samples(tmp_path, "fastapi_threadpool")
    os.kill(cli.pid, signal.SIGINT)
    code, _, err = finish(cli)
    assert code == 130, err[-3000:]

    summary = read_summary(run_dir / "summary.json")
    assert summary.interrupted
    assert summary.never_ran["flask_threads"] == ("c1", "c2", "c3")
    left = summary.never_ran["fastapi_threadpool"]  # c2 had started, unless ^C came before it
    assert left in (("c3",), ("c2", "c3"))
    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "<strong>Interrupted</strong>" in html
    assert f"Never ran ({3 + len(left)} target × point)" in html
    assert "flask_threads: c1, c2, c3" in html
