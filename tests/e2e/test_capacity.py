"""End to end: a capacity search through the real CLI, target processes and driver, on the
`sim:` model; once from a scenario file (`patternbench run`) and once against a URL
(`patternbench capacity URL`) of a target started here.

One thread-pool replica serves one request at a time (15 ms to the first token, 3 ms per token),
so with a 150 ms TTFT limit c=1 passes and c=8 (each request behind up to 7 others) fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.run.launcher import start_target
from harness.summary.record import RunSummary, read_summary
from tests.manifests import read_manifest_checked

ROOT = Path(__file__).resolve().parents[2]
MODEL = "sim:ttft_ms=15,tpot_ms=3,gil=release"
SCENARIO = f"""
name = "e2e-capacity"
model = "{MODEL}"
seed = 3
timeout_s = 30

[workload]
prompt_tokens = 16
output_tokens = 12

[load]
kind = "capacity"
start = 1
max_level = 8
budget_s = 30
duration_s = 1
warmup_s = 0.3

[slo]
ttft_ms = 150
share = 0.9

[[targets]]
name = "fastapi_threadpool"
options = {{ replicas = 1 }}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)


def check_interval(summary: RunSummary, label: str) -> None:
    """The interval brackets the knee, and every level it measured is an ordinary point."""
    cap = summary.capacity[label]
    assert cap.last_pass is not None and cap.first_fail is not None, cap
    assert cap.last_pass.level < cap.first_fail.level <= 8
    assert cap.last_pass.passed and not cap.first_fail.passed
    if cap.stopped == "resolved":
        assert cap.first_fail.level - cap.last_pass.level <= 1
    points = {p.point: p for p in summary.points if p.target == label}
    # each level once; a level measured again (c4.2) has a point per try, named after it
    levels = [lv.point.split(".")[0] for lv in cap.levels]
    assert len(set(levels)) == len(levels) and {p.split(".")[0] for p in points} == set(levels)
    for level in cap.levels:
        point = points[level.point]
        assert point.load.concurrency == level.level and point.requests.total > 0
        assert point.goodput is not None and point.goodput.fraction == level.good_fraction


def test_capacity_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "cap.toml"
    scenario.write_text(SCENARIO)
    proc = run_cli("run", str(scenario), "--results", str(tmp_path / "results"),
                   "--reports", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list((tmp_path / "results").iterdir())
    summary = read_summary(run_dir / "summary.json")
    check_interval(summary, "fastapi_threadpool")
    assert summary.slo_share == 0.9
    page = (tmp_path / "reports" / run_dir.name / "index.html").read_text()
    assert "<section id='verdict'" in page and "Capacity under the SLO (first token ≤ 150 ms" \
        in page


def test_capacity_of_a_url(tmp_path: Path) -> None:
    with start_target("local", "fastapi_threadpool", model=MODEL, device="cpu",
                      options={"replicas": 1}, log_path=tmp_path / "target.log") as target:
        proc = run_cli("capacity", target.url, "--slo", "ttft_ms=150", "--budget-s", "30",
                       "--max-concurrency", "8", "--duration", "1",
                       "--output-tokens", "12",
                       "--results", str(tmp_path / "results"),
                       "--reports", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Capacity: ") and "(first token ≤ 150 ms, for 90% of " \
        "requests)" in lines[0] and " fails: only " in lines[0], proc.stdout
    report = Path(lines[-1].removeprefix("report:").strip())
    assert report.is_file()
    (run_dir,) = list((tmp_path / "results").iterdir())
    summary = read_summary(run_dir / "summary.json")
    check_interval(summary, "endpoint")
    cap = summary.capacity["endpoint"]
    assert cap.last_pass is not None and f"Capacity: {cap.last_pass.level:g} request" in lines[0]
    resolved = read_manifest_checked(run_dir).scenario.resolved
    assert resolved is not None and resolved.targets[0].options["url"] == target.url


def test_a_server_killed_during_the_search_gets_no_capacity(tmp_path: Path) -> None:
    """The issue's case: the server dies in the middle of the search. The search stops at the
    level it died in, the answer says so, and the command exits 3 (a target failed)."""
    with start_target("local", "fastapi_threadpool", model=MODEL, device="cpu",
                      options={"replicas": 1}, log_path=tmp_path / "target.log") as target:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "capacity", target.url, "--slo",
             "ttft_ms=150", "--budget-s", "60", "--max-concurrency", "64", "--duration", "2",
             "--output-tokens", "12",
             "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:  # the runner prints each point's line as it ends
            if line.lstrip().startswith("[endpoint c2]") and " ok " in line:
                break
        assert target.process is not None
        target.process.kill()  # c=2 ran: kill the server while c=4 runs
        out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 3, out
    assert out.startswith("No capacity: the target died at c4"), out
    (run_dir,) = list((tmp_path / "results").iterdir())
    summary = read_summary(run_dir / "summary.json")
    cap = summary.capacity["endpoint"]
    assert cap.stopped == "target_died" and cap.levels[-1].judged == "died"
    assert [lv.level for lv in cap.levels] == [1, 2, 4]  # nothing after the death
    assert summary.targets["endpoint"].status == "failed"
