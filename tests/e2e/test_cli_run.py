"""End to end: `patternbench run` on a small scenario with the sim model, through the real CLI,
real target processes and the real driver; then the stored results and the report are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from harness.samples import read_samples
from harness.summary.record import read_summary
from tests.manifests import read_manifest_checked

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "summary.schema.json"

SCENARIO = """
name = "e2e"
description = "two targets, sim model, two closed-loop levels"
model = "sim:ttft_ms=15,tpot_ms=3,gil=release"
seed = 7
timeout_s = 60

[workload]
prompt_tokens = 24
output_tokens = 12
stream = true

[load]
kind = "closed"
concurrency = [1, 3]
duration_s = 1.5
warmup_s = 0.5

[slo]
ttft_ms = 2000

[[targets]]
name = "flask_threads"
options = { threads = 4 }

[[targets]]
name = "fastapi_threadpool"
"""


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_run_writes_results_and_report(tmp_path: Path) -> None:
    scenario = tmp_path / "e2e.toml"
    scenario.write_text(SCENARIO)
    results, reports = tmp_path / "results", tmp_path / "reports"
    proc = run_cli("run", str(scenario), "--results", str(results), "--reports", str(reports),
                   cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = list(results.iterdir())
    assert run_dir.name.split("-")[2] == "e2e"

    manifest = read_manifest_checked(run_dir)  # the committed schema, then the typed record
    assert manifest.model.spec.startswith("sim:")
    assert len(manifest.model.hash) == 16
    assert manifest.seeds.scenario == 7
    assert manifest.versions["torch"]

    summary = json.loads((run_dir / "summary.json").read_text())
    jsonschema.validate(summary, json.loads(SCHEMA.read_text()))  # the committed schema
    typed = read_summary(run_dir / "summary.json")  # and the types it was generated from
    assert [p.target for p in typed.points] == [p["target"] for p in summary["points"]]
    points = {(p["target"], p["point"]): p for p in summary["points"]}
    assert set(points) == {(t, c) for t in ("flask_threads", "fastapi_threadpool")
                           for c in ("c1", "c3")}
    for (target, point), entry in points.items():
        assert entry["requests"]["ok"] > 0, (target, point)
        assert entry["requests"]["ok"] == entry["requests"]["total"]
        assert entry["ttft_ms"]["p50"] >= 15  # the sim's TTFT is a floor
        assert entry["output_tokens"]["max"] == 12
        assert entry["throughput"]["output_tok_s"] > 0
        assert entry["load"] == {"kind": "closed", "concurrency": int(point[1:]),
                                 "rate_rps": None, "params": {}}
        samples = read_samples(run_dir / "samples" / target / f"{point}.jsonl")
        assert len(samples) >= entry["requests"]["total"]
        ok = [s for s in samples if s.ok]
        assert all(len(s.token_times) == 12 and s.output_tokens == 12 for s in ok)
        assert all(s.scheduled_at <= s.sent_at < (s.first_token_at or 0) <= (s.done_at or 0)
                   for s in ok)

    report = Path(proc.stdout.split("report:")[1].strip())
    html = report.read_text()
    assert report == reports / run_dir.name / "index.html"
    assert "flask_threads" in html and "fastapi_threadpool" in html
    assert "data:image/png;base64," in html
    assert run_dir.name in (reports / "index.html").read_text()


def test_unknown_target_is_a_one_line_error(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(SCENARIO.replace('name = "fastapi_threadpool"', 'name = "nope"'))
    proc = run_cli("run", str(scenario), "--results", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("patternbench: unknown target(s) ['nope']")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_missing_scenario_file_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli("run", str(tmp_path / "missing.toml"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "scenario file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
