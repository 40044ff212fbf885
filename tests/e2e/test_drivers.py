"""End to end: the three load drivers against one real target process serving the sim model.

One scenario names all three drivers (points labelled `target@driver`), spreads the builtin driver
over two processes and runs locust as a master with two workers, pins the target and the driver
to separate cores, and probes /health; a second run replays a trace through the builtin driver;
a short `calibrate` stores figures that later runs carry in their manifest.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.run.calibrate import CalibrateOptions, calibrate
from harness.run.calibration import read_calibration
from harness.run.folder import RunDir
from harness.run.launcher import TargetProcess
from harness.run.manifest import build_manifest
from harness.run.runner import RunOptions, open_registry_target, run_scenario
from harness.samples import read_samples
from harness.scenario.load import parse_scenario
from harness.scenario.types import Scenario, TargetConfig
from tests.manifests import DOCS, GIT, MODEL

SIM = "sim:ttft_ms=10,tpot_ms=3,gil=release"


def scenario(**extra: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "e2e-drivers", "model": SIM, "seed": 3, "timeout_s": 30,
        "workload": {"prompt_tokens": 16, "output_tokens": 8},
        "load": {"kind": "constant", "rate_rps": 10, "duration_s": 2, "warmup_s": 0.5},
        "client": {"probe_interval_s": 0.25},
        "targets": [{"name": "fastapi_threadpool", "label": "sim",
                     "options": {"workers": 8}}],
    }
    return parse_scenario(data | extra)


def run(sc: Scenario, tmp_path: Path, affinity: dict[str, Any] | None = None) -> Path:
    def opener(tc: TargetConfig, s: Scenario, run_dir: Path, opts: RunOptions) -> TargetProcess:
        target = open_registry_target(tc, s, run_dir, opts)
        if affinity is not None and target.pid is not None:
            affinity["target"] = os.sched_getaffinity(target.pid)
        return target

    opts = RunOptions(results_root=tmp_path / "results", reports_root=tmp_path / "reports",
                      out=io.StringIO())
    return run_scenario(sc, opts, open_target=opener)


def test_each_driver_runs_the_same_load(tmp_path: Path) -> None:
    cores = sorted(os.sched_getaffinity(0))
    pin = {"target": cores[:1], "driver": cores[1:2]} if len(cores) > 1 else {}
    sc = scenario(driver=["builtin", "k6", "locust"], cpu_affinity=pin,
                  client={"probe_interval_s": 0.25, "processes": 2})
    seen: dict[str, Any] = {}
    run_dir = run(sc, tmp_path, seen)
    summary = json.loads((run_dir / "summary.json").read_text())
    points = {p["target"]: p for p in summary["points"]}
    assert sorted(points) == ["sim@builtin", "sim@k6", "sim@locust"]
    assert sorted(summary["targets"]) == sorted(points)
    for label, p in points.items():
        assert p["requests"]["ok"] >= 15, (label, p["requests"])
        assert p["requests"]["ok"] == p["requests"]["total"], (label, p["requests"])
        assert p["e2e_ms"]["p50"] >= 10 + 7 * 3, label  # the sim model's own time
        assert p["probe"] is not None and p["probe"]["answered"] >= 4, label
        probes = (run_dir / "probes" / label / "r10.jsonl").read_text().splitlines()
        assert all(json.loads(line)["status"] == 200 for line in probes)
        samples = read_samples(run_dir / "samples" / label / "r10.jsonl")
        assert len({s.request_id for s in samples}) == len(samples)  # no index sent twice
        assert {s.driver for s in samples} == {label.split("@")[1]}
    assert points["sim@builtin"]["ttft_ms"] is not None
    assert points["sim@locust"]["ttft_ms"] is not None
    assert points["sim@k6"]["ttft_ms"] is None and points["sim@k6"]["ttfb_ms"] is not None
    assert "no_token_timing" in points["sim@k6"]["flags"]
    assert points["sim@k6"]["driver_stats"]["dropped_iterations"] == 0
    assert points["sim@k6"]["dropped"] == 0 and "dropped" not in points["sim@k6"]["flags"]
    assert points["sim@k6"]["dispatch_lag_ms"]["count"] >= 15  # dated by k6's ticks
    assert points["sim@builtin"]["driver_loop_lag_ms"]["count"] > 0  # both processes' loops
    assert points["sim@locust"]["driver_stats"]["workers"] == 2
    locust_files = list((run_dir / "drivers" / "sim@locust" / "r10").glob("records-*.jsonl"))
    assert len(locust_files) == 2  # one per worker process
    if pin:
        assert seen["target"] == set(pin["target"])
    assert os.sched_getaffinity(0) == set(cores)  # the harness got its cores back


def test_builtin_replays_a_trace_with_its_token_counts(tmp_path: Path) -> None:
    rows = [{"offset_s": i * 0.1, "prompt_tokens": 8 + i, "output_tokens": 2 + i % 3}
            for i in range(10)]
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sc = scenario(load={"kind": "trace", "path": str(trace), "duration_s": 1.5,
                        "warmup_s": 0})
    run_dir = run(sc, tmp_path)
    samples = sorted(read_samples(run_dir / "samples" / "sim" / "trace.jsonl"),
                     key=lambda s: s.scheduled_at)
    assert [(s.prompt_tokens, s.output_tokens) for s in samples] == [
        (r["prompt_tokens"], r["output_tokens"]) for r in rows]
    gaps = [b.scheduled_at - a.scheduled_at for a, b in itertools.pairwise(samples)]
    assert gaps == pytest.approx([0.1] * 9)


def test_calibrate_stores_figures_that_later_runs_carry(tmp_path: Path) -> None:
    opts = CalibrateOptions(drivers=("builtin",), concurrency=4, tokens=4, duration_s=1.0,
                            warmup_s=0.3, results_root=tmp_path / "results",
                            reports_root=tmp_path / "reports")
    data = calibrate(opts, out=io.StringIO())
    figures = data.drivers["builtin"]
    assert figures.max_req_s is not None and figures.max_req_s > 0 and figures.errors == 0
    assert figures.timing == "token"
    assert (figures.ttft_p99_ms or 0) >= (figures.ttft_p50_ms or 0) > 0
    path = tmp_path / "results" / "calibration.json"
    jsonschema.validate(json.loads(path.read_text()),
                        json.loads((DOCS / "calibration.schema.json").read_text()))
    assert read_calibration(path) == data
    manifest = build_manifest(scenario(), RunDir(tmp_path / "results" / "next"),
                              results_root=tmp_path / "results", scenario_file=None,
                              device="cpu", model=MODEL, git=GIT)
    assert manifest.calibration == data


def test_builtin_spread_over_processes_numbers_every_request_once(tmp_path: Path) -> None:
    # Closed loop against echo: hundreds of requests through a pool of 256 prompts, split over
    # two driver processes (slots 0, 2, 4, ... and 1, 3, 5, ...).
    sc = scenario(model="sim:ttft_ms=0,tpot_ms=0", targets=[{"name": "echo"}],
                  load={"kind": "closed", "concurrency": 8, "duration_s": 4,
                        "warmup_s": 0.2, "max_requests": 600},
                  client={"processes": 2, "probe_interval_s": 0})
    run_dir = run(sc, tmp_path)
    samples = read_samples(run_dir / "samples" / "echo" / "c8.jsonl")
    indices = sorted(int(s.request_id.rsplit("-", 1)[1]) for s in samples)
    assert len(samples) > 256 and len(set(indices)) == len(indices)
    assert all(i < 600 for i in indices) and {s.status for s in samples} == {"ok"}
    assert {i % 2 for i in indices} == {0, 1}  # both processes sent
