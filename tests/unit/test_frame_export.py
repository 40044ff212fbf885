"""The pandas table layer (harness.report.frame) and `patternbench export`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main
from harness.metrics.repeats import Spread
from harness.report.export import export_run
from harness.report.frame import metric, points_frame
from harness.report.repeats_table import spreads_frame
from harness.run.folder import RunDir
from harness.summary.record import SCHEMA_VERSION, RunSummary, read_summary
from tests.unit.test_report import make_run, point

RUN_ID = "20261127-173500-default-abc1234"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "results", RUN_ID, "2026-11-27T17:35:00+00:00")


def test_one_row_per_point_with_flattened_metrics(run_dir: Path) -> None:
    summary = read_summary(RunDir(run_dir).summary)
    frame = points_frame(summary)
    assert len(frame) == len(summary.points) == 6
    assert set(frame["run"]) == {RUN_ID}
    row = frame[(frame["target"] == "fastapi_batching") & (frame["level"] == 8)].iloc[0]
    point = next(p for p in summary.points if p.target == "fastapi_batching" and p.point == "c8")
    assert row["throughput.output_tok_s"] == pytest.approx(point.throughput.output_tok_s)
    assert row["ttft_ms.p50"] == pytest.approx(point.ttft_ms.p50)  # type: ignore[union-attr]
    assert row["requests.ok"] == point.requests.ok and row["load_kind"] == "closed"
    assert row["tok_s_per_request"] == pytest.approx(1000 / point.tpot_ms.p50)  # type: ignore[union-attr]
    missing = frame[(frame["target"] == "flask_threads") & (frame["level"] == 32)]
    assert metric(missing, "ttft_ms.p50").isna().all()  # a point without TTFT: NaN, not 0
    assert metric(frame, "no.such.column").isna().all()


def test_confidence_intervals_split_into_bounds(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "results", RUN_ID, "2026-11-27T17:35:00+00:00")
    raw = json.loads((run_dir / "summary.json").read_text())
    raw["points"][0]["ttft_ms"]["ci95"] = {"p50": [100.0, 140.0], "p99": None}
    (run_dir / "summary.json").write_text(json.dumps(raw))
    frame = points_frame(read_summary(RunDir(run_dir).summary))
    first = frame.iloc[0]
    assert (first["ttft_ms.ci95.p50.lo"], first["ttft_ms.ci95.p50.hi"]) == (100.0, 140.0)
    assert pd.isna(first["ttft_ms.ci95.p99.lo"]) and "ttft_ms.ci95.p50" not in frame


@pytest.mark.parametrize("fmt", ["csv", "md", "parquet"])
def test_export_writes_every_point_in_each_format(run_dir: Path, fmt: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(run_dir), "--format", fmt]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == run_dir / f"points.{fmt}"
    if fmt == "csv":
        back = pd.read_csv(path)
    elif fmt == "parquet":
        back = pd.read_parquet(path)
    else:
        lines = path.read_text().splitlines()
        assert lines[0].startswith("|") and "throughput.output_tok_s" in lines[0]
        assert len(lines) == 2 + 6 and any("fastapi_batching" in line for line in lines)
        return
    assert len(back) == 6
    assert set(back["target"]) == {"flask_threads", "fastapi_batching"}
    assert back["throughput.output_tok_s"].max() == pytest.approx(316.0 * 32 / 1.4)
    assert "driver_bound" in set(back["flags"].dropna())


def test_export_to_a_chosen_path_and_a_missing_summary(run_dir: Path, tmp_path: Path) -> None:
    out = export_run(run_dir, "csv", tmp_path / "out" / "table.csv")
    assert out.is_file() and out.read_text().startswith("run,target,")
    assert main(["export", str(tmp_path / "nothing"), "--format", "csv"]) == 2


def test_the_repeats_table_groups_repeats_and_counts_an_all_failed_one_as_zero() -> None:
    reps = [point("t1", 4, 1.0, repeat=r) for r in range(3)]
    for r, tok_s in enumerate((300.0, 330.0, None)):
        reps[r]["throughput"]["output_tok_s"] = tok_s  # repeat 2: every request failed
    once = point("t1", 8, 1.0)
    summary = RunSummary.from_json({"schema_version": SCHEMA_VERSION, "run": RUN_ID,
                                    "scenario": "s", "interrupted": False, "targets": {},
                                    "points": [once, *reps]})
    spreads = spreads_frame(list(summary.points))
    assert list(spreads.index) == ["c4", "c8"]  # load order
    tok = spreads.loc["c4", "throughput.output_tok_s"]
    assert isinstance(tok, Spread) and (tok.n, tok.mean) == (3, pytest.approx(210.0))
    assert spreads.loc["c8", "ttft_ms.p50"] is None  # measured once: no spread


def test_a_spike_point_s_many_columns_come_back_in_one_consolidated_frame() -> None:
    """A spike record adds ~140 columns; `.assign` on the frame must not warn (fragmented)."""
    from harness.metrics.spike import spike_summary
    from harness.samples import Sample
    from harness.scenario.types import LoadPoint
    from harness.summary.record import Load
    from tests.summaries import typed_point

    spike_point = LoadPoint("r10", "spike", duration_s=4, warmup_s=0, rate_rps=10,
                            params={"spike_rate_rps": 50, "spike_start_s": 1,
                                    "spike_duration_s": 1})
    samples = [Sample(request_id=f"t-r10-{i}", target="t", point="r10", scheduled_at=t,
                      sent_at=t + 0.001, status="ok", first_byte_at=t + 0.02,
                      first_token_at=t + 0.021, token_times=(t + 0.021, t + 0.026),
                      done_at=t + 0.027, prompt_tokens=16, output_tokens=2,
                      tokens_source="usage", http_status=200)
               for i, t in enumerate((0.5, 1.2, 2.5))]
    spike = spike_summary(samples, spike_point, started_at=0.0, warmup_end=0.0, load_end=4.0)
    points = tuple(typed_point(f"t{k}", "r10", Load("spike", rate_rps=10.0), spike=spike)
                   for k in range(3))
    summary = RunSummary(schema_version=SCHEMA_VERSION, run=RUN_ID, scenario="s",
                         interrupted=False, targets={}, points=points)
    frame = points_frame(summary).assign(extra=1)  # pytest turns a PerformanceWarning into an error
    assert frame["spike.during.sent"].tolist() == [1, 1, 1]
    assert frame["spike.recovery_s"].tolist() == [0.0, 0.0, 0.0]
