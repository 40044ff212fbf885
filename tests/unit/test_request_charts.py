"""The serving charts' data: the Pareto frame, the chosen load and the samples frame (the
rendered charts are checked in tests/e2e/test_site.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.pareto import pareto_frame
from harness.report.request_charts import chosen_load, samples_frame
from harness.report.run_data import load_run
from harness.run.folder import RunDir
from harness.samples import Sample, write_samples
from tests.unit.test_report import make_run

RUN_ID = "20261127-173500-default-abc1234"


def stream(target: str, i: int, sent: float, queued_s: float, step_s: float) -> Sample:
    """A streamed 64-token request as the builtin driver records it."""
    first = sent + queued_s
    tokens = tuple(first + k * step_s for k in range(64))
    return Sample(request_id=f"{target}-c32-{i}", target=target, point="c32",
                  scheduled_at=sent, sent_at=sent, status="ok", first_byte_at=first,
                  first_token_at=first, token_times=tokens, done_at=tokens[-1],
                  prompt_tokens=128, output_tokens=64, tokens_source="usage")


def write_point_samples(run_dir: Path) -> None:
    """c32: fastapi_batching starts all requests together (one batch, 20 ms to first token);
    flask_threads serves them one after another (each waits for the ones before it)."""
    folder = RunDir(run_dir)
    batch = [stream("fastapi_batching", i, 0.001 * i, 0.02, 0.01) for i in range(32)]
    serial = [stream("flask_threads", i, 0.001 * i, 0.6 * i + 0.02, 0.009) for i in range(32)]
    serial.append(Sample(request_id="flask_threads-c32-x", target="flask_threads", point="c32",
                         scheduled_at=0.5, sent_at=0.5, status="refused", failed_at=0.51,
                         http_status=503))
    write_samples(folder.samples("fastapi_batching", "c32"), batch)
    write_samples(folder.samples("flask_threads", "c32"), serial)


def test_pareto_plots_total_against_per_request_speed(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, RUN_ID, "2026-11-27T17:35:00+00:00"))
    frame = pareto_frame(run)
    row = frame[(frame["target"] == "fastapi_batching") & (frame["point"] == "c8")].iloc[0]
    assert row["tok_s_per_request"] == pytest.approx(1000 / 7.0)  # TPOT p50 7 ms
    assert row["throughput.output_tok_s"] == pytest.approx(316.0 * 8 / 1.1)
    assert len(frame) == 6


def test_the_chosen_load_is_the_highest_every_target_ran(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, RUN_ID, "2026-11-27T17:35:00+00:00")
    run = load_run(run_dir)
    assert chosen_load(run) == ("c=32", {"flask_threads": "c32", "fastapi_batching": "c32"})
    assert samples_frame(run, "flask_threads", "c32").empty  # no samples stored: no chart
    write_point_samples(run_dir)
    frame = samples_frame(run, "flask_threads", "c32")
    assert len(frame) == 33 and frame["ttft_ms"].max() == pytest.approx(0.6 * 31e3 + 20)


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_charts_of_a_load_where_one_target_completed_nothing(tmp_path: Path) -> None:
    """vLLM's default shutdown: every stream of one target is cut, none has a first token."""
    from harness.report.request_charts import at_load_charts

    run_dir = make_run(tmp_path, RUN_ID, "2026-11-27T17:35:00+00:00")
    folder = RunDir(run_dir)
    write_samples(folder.samples("fastapi_batching", "c32"),
                  [stream("fastapi_batching", i, 0.001 * i, 0.02, 0.01) for i in range(32)])
    cut = [Sample(request_id=f"flask_threads-c32-{i}", target="flask_threads", point="c32",
                  scheduled_at=0.01 * i, sent_at=0.01 * i, status="timeout",
                  failed_at=60.0 + 0.01 * i) for i in range(8)]
    write_samples(folder.samples("flask_threads", "c32"), cut)
    label, charts = at_load_charts(load_run(run_dir))
    cdf = next(c for c in charts if c.kind == "ttft_cdf")
    assert label == "c=32" and cdf.alt is not None
    assert "fastapi_batching p50" in cdf.alt and "flask_threads" not in cdf.alt
