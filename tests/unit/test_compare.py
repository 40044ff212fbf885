"""`patternbench compare`: deltas with intervals from harness.metrics.change, warnings, HTML and
md."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.compare import METRICS, compare, differences, discoveries
from harness.metrics.measured import Noise
from harness.records.typed_json import encode
from harness.report.compare_page import compare_runs
from harness.report.run_data import load_run
from harness.run.manifest import Manifest
from harness.summary.record import Distribution
from tests.manifests import MACHINE, MODEL, manifest, scenario, write_manifest
from tests.unit.test_report import make_run


def measured(median_ms: float, n: int, seed: int) -> dict[str, Any]:
    """A distribution as metrics writes it (ci95 and too_few included) from n latencies."""
    rng = random.Random(seed)
    out: dict[str, Any] = encode(Distribution.of(
        median_ms * rng.lognormvariate(0, 0.25) for _ in range(n)))
    return out


def write_run(results: Path, run_id: str, ttft_ms: float, tok_s: float,
              written: Manifest | dict[str, Any] | None = None) -> Path:
    """A run like `make_run`'s with fastapi_batching's c8 TTFT drawn from 400 requests;
    `written`: its manifest instead of `make_run`'s (a dict: as an older version wrote it)."""
    run_dir = make_run(results, run_id, "2026-11-27T17:35:00+00:00")
    summary = json.loads((run_dir / "summary.json").read_text())
    for i, p in enumerate(summary["points"]):
        p["ttft_ms"] = measured(ttft_ms, 400, seed=i + len(run_id))
        p["requests"]["ok"] = p["requests"]["total"] = 400
        rate = tok_s * (p["load"]["concurrency"] ** 0.5)
        p["throughput"]["output_tok_s"] = rate
        p["throughput"]["ci95"] = {"output_tok_s": [0.97 * rate, 1.03 * rate]}  # sectioned
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if isinstance(written, Manifest):
        write_manifest(run_dir, replace(written, run=run_id))
    elif written is not None:
        (run_dir / "manifest.json").write_text(json.dumps(written | {"run": run_id}))
    return run_dir


def test_two_single_runs_without_a_noise_figure_are_not_judged(tmp_path: Path) -> None:
    a = write_run(tmp_path, "20261127-173500-default-aaaaaaa", ttft_ms=100.0, tok_s=300.0)
    b = write_run(tmp_path, "20261128-173500-default-bbbbbbb", ttft_ms=50.0, tok_s=300.0)
    c = compare([load_run(a), load_run(b)])
    row = c.deltas[(c.deltas["target"] == "fastapi_batching") & (c.deltas["point"] == "c8")
                   & (c.deltas["metric"] == "ttft_ms.p50")].iloc[0]
    assert row["direction"] == "unknown" and row["why"].startswith("run-to-run noise unknown")
    assert row["pct"] == pytest.approx(-50.0, abs=10)  # the change is still shown
    assert c.headline.startswith(f"0 of {len(c.deltas)} cells changed beyond noise")
    assert "could not be judged" in c.headline


def test_with_the_baselines_noise_a_faster_run_is_improved_a_same_one_unchanged(
        tmp_path: Path) -> None:
    a = write_run(tmp_path, "20261127-173500-default-aaaaaaa", ttft_ms=100.0, tok_s=300.0)
    b = write_run(tmp_path, "20261128-173500-default-bbbbbbb", ttft_ms=50.0, tok_s=300.0)
    runs = [load_run(a), load_run(b)]
    noise = {"default": {(p.target, p.point, column): Noise(sd_log=0.05, k=3)
                         for p in runs[0].points for column, _ in METRICS}}
    c = compare(runs, noise)
    cells = c.deltas[(c.deltas["target"] == "fastapi_batching") & (c.deltas["point"] == "c8")]
    ttft = cells[cells["metric"] == "ttft_ms.p50"].iloc[0]
    assert ttft["direction"] == "improved" and ttft["basis"] == "prediction"
    assert ttft["pct_lo"] < ttft["pct"] < ttft["pct_hi"] < 0
    same = c.deltas[(c.deltas["metric"] == "throughput.output_tok_s")]
    bound = same["why"].fillna("").str.startswith("driver_bound")  # make_run's flask c8
    assert set(same[~bound]["direction"]) == {"unchanged"} and bound.sum() == 1
    assert (same[~bound]["pct"] == 0).all()
    assert set(same[bound]["direction"]) == {"unknown"}
    assert len(c.deltas[c.deltas["metric"] == "ttft_ms.p50"]) == 6  # every common point
    assert c.warnings == ()


def test_many_cells_that_cross_their_interval_by_chance_are_not_discoveries() -> None:
    """Benjamini–Hochberg over a page: one strong change stands, four p ≈ 0.02 do not (each
    alone would look significant: 100 cells make about five such by chance)."""
    p = [0.0001, 0.02, 0.02, 0.02, 0.02, *[0.5] * 95]
    frame = pd.DataFrame({"p": p, "direction": ["regressed"] * 5 + ["unchanged"] * 95})
    out = discoveries(frame)
    assert list(out["direction"][:5]) == ["regressed", "unchanged", "unchanged", "unchanged",
                                          "unchanged"]


def test_different_model_machine_and_scenario_are_named(tmp_path: Path) -> None:
    a = write_run(tmp_path, "20261127-173500-default-aaaaaaa", 100.0, 300.0)
    other = manifest(scenario(load={"kind": "closed", "concurrency": [4, 8, 32]}),
                     model=replace(MODEL, hash="0123abcd" * 8),
                     machine=replace(MACHINE, cpu="EPYC", cores=16))
    b = write_run(tmp_path, "20261128-173500-default-bbbbbbb", 100.0, 300.0, other)
    warnings = " ".join(differences([load_run(a), load_run(b)]))
    assert "Different models" in warnings and "0123abcd" in warnings
    assert "Different machines" in warnings and "cpu EPYC vs Xeon, cores 16 vs 2" in warnings
    assert "different settings" in warnings and "points[0].concurrency 4 vs 1" in warnings


def test_settings_a_newer_version_records_are_not_called_changes(tmp_path: Path) -> None:
    """Two runs of ci.toml, before and after the workload gained top_k/min_p and [client] was
    resolved per target: what only the later manifest holds is named apart, a real change as
    one with both values."""
    ci = scenario(name="ci", load={"kind": "closed", "concurrency": [1, 16]},
                  targets=[{"name": "flask_threads", "options": {"threads": 16}}])
    newer = manifest(ci)
    older = newer.to_json()  # as patternbench wrote it before those settings were recorded
    resolved = older["scenario"]["resolved"]
    del resolved["client"], resolved["targets"][0]["client"]
    del resolved["workload"]["top_k"], resolved["workload"]["min_p"]
    a = write_run(tmp_path, "20261201-153058-ci-7855faa", 100.0, 300.0, older)
    b = write_run(tmp_path, "20261201-190149-ci-99bb511", 100.0, 300.0, newer)
    (added,) = differences([load_run(a), load_run(b)])
    assert added == ("20261201-190149-ci-99bb511 records settings 20261201-153058-ci-7855faa "
                     "does not, added by a newer patternbench at their defaults: "
                     "client, targets[0].client, workload.min_p, workload.top_k.")
    changed_load = manifest(replace(ci, points=scenario(
        load={"kind": "closed", "concurrency": [2, 16]}).points))
    c = write_run(tmp_path, "20261201-200000-ci-aaaaaaa", 100.0, 300.0, changed_load)
    changed, _ = differences([load_run(a), load_run(c)])
    assert "different settings" in changed and "points[0].concurrency 2 vs 1" in changed


def test_compare_needs_two_runs(tmp_path: Path) -> None:
    a = write_run(tmp_path, "20261127-173500-default-aaaaaaa", 100.0, 300.0)
    with pytest.raises(ValueError, match="two runs"):
        compare_runs([a], tmp_path / "reports")


def test_points_repeated_on_both_sides_are_compared_over_their_repeats(tmp_path: Path) -> None:
    runs = []
    for run_id, tok_s in (("20261127-173500-default-aaaaaaa", (300.0, 310.0, 305.0)),
                          ("20261128-173500-default-bbbbbbb", (200.0, 205.0, 210.0))):
        run_dir = write_run(tmp_path, run_id, 100.0, 300.0)
        summary = json.loads((run_dir / "summary.json").read_text())
        first = next(p for p in summary["points"] if p["target"] == "fastapi_batching"
                     and p["point"] == "c8")
        repeats = [json.loads(json.dumps(first)) for _ in tok_s]
        for r, (p, value) in enumerate(zip(repeats, tok_s, strict=True)):
            p["repeat"], p["throughput"]["output_tok_s"] = r, value
        summary["points"] = [p for p in summary["points"] if p is not first] + repeats
        (run_dir / "summary.json").write_text(json.dumps(summary))
        runs.append(load_run(run_dir))
    deltas = compare(runs).deltas
    row = deltas[(deltas["point"] == "c8") & (deltas["target"] == "fastapi_batching")
                 & (deltas["metric"] == "throughput.output_tok_s")].iloc[0]
    assert row["basis"] == "repeats" and row["direction"] == "regressed"
    assert row["before"] == pytest.approx(305.0) and row["after"] == pytest.approx(205.0)
