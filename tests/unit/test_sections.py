"""Within-run intervals by sectioning (`harness.metrics.sections`): worked numbers, what a
point's summary stores, and the coverage simulation of scripts/interval_coverage.py."""

from __future__ import annotations

import random

import pytest

from harness.metrics.quantiles import quantile_ci, wilson
from harness.metrics.requests import summarize
from harness.metrics.sections import (
    MIN_SECTIONS,
    SECTIONS,
    hull,
    mean_interval,
    quantile_interval,
    rate_interval,
    sections_for,
    sections_of,
)
from harness.samples import Sample
from tests.scripts import load_script


def test_values_fall_in_the_section_of_their_time_and_the_ends_are_clamped() -> None:
    timed = [(-1.0, 1.0), (0.0, 2.0), (2.5, 3.0), (9.99, 4.0), (10.0, 5.0), (12.0, 6.0)]
    groups = sections_of(timed, 0.0, 10.0, k=4)
    assert groups == [[1.0, 2.0], [3.0], [], [4.0, 5.0, 6.0]]


def test_a_steady_rate_has_a_zero_width_interval_and_a_lumpy_one_a_wide_one() -> None:
    assert rate_interval([50.0] * 10, 0.0, 10.0) == (50.0, 50.0)
    lo, hi = rate_interval([0.0, 100.0] * 5, 0.0, 10.0) or (0.0, 0.0)
    # sections at 0 and 100 per second: mean 50, sd 52.70, se 16.67, t(9) = 2.262 → ± 37.70
    assert (lo, hi) == pytest.approx((12.30, 87.70), abs=0.01)
    assert rate_interval([1.0, 2.0, 3.0], 0.0, 3.0) is None  # fewer than MIN_SECTIONS


def test_the_mean_interval_is_the_batch_means_one() -> None:
    # four sections, one value each at 10, 20, 30, 40: mean 25, se = sd / 2 = 6.455, t(3) 3.182
    timed = [(0.5, 10.0), (1.5, 20.0), (2.5, 30.0), (3.5, 40.0)]
    lo, hi = mean_interval(timed, 0.0, 4.0, k=4) or (0.0, 0.0)
    assert (lo, hi) == pytest.approx((25 - 20.54, 25 + 20.54), abs=0.01)
    assert mean_interval(timed[:3], 0.0, 4.0, k=4) is None


def test_independent_values_get_about_the_order_statistic_interval() -> None:
    rng = random.Random(3)
    timed = [(i / 100, rng.lognormvariate(3, 0.4)) for i in range(1000)]
    sectioned = quantile_interval(timed, 0.5, 0.0, 10.0)
    order = quantile_ci(sorted(v for _, v in timed), 0.5)
    assert sectioned is not None and order is not None
    width = (sectioned[1] - sectioned[0]) / (order[1] - order[0])
    assert 0.5 < width < 2.0


def test_values_that_move_together_get_a_wider_interval_than_the_order_statistics() -> None:
    rng = random.Random(4)
    steps = [rng.lognormvariate(3, 0.3) for _ in range(100)]
    timed = [(k / 10, steps[k]) for k in range(100) for _ in range(16)]  # 16 streams per step
    order = quantile_ci(sorted(v for _, v in timed), 0.5)
    sectioned = quantile_interval(timed, 0.5, 0.0, 10.0)
    assert order is not None and sectioned is not None
    assert sectioned[1] - sectioned[0] > 2.5 * (order[1] - order[0])


def test_hull_needs_both_and_sections_follow_the_requests_duration() -> None:
    assert hull((1.0, 3.0), (2.0, 5.0)) == (1.0, 5.0)
    assert hull((1.0, 3.0), None) is None
    assert sections_for(10.0, None) == SECTIONS
    assert sections_for(10.0, 2.0) == 5
    assert sections_for(5.0, 4.0) == MIN_SECTIONS


def test_wilson_says_what_eleven_of_twelve_passes_allow() -> None:
    lo, hi = wilson(11, 12) or (0.0, 0.0)
    assert lo == pytest.approx(0.646, abs=0.001) and hi == pytest.approx(0.985, abs=0.001)
    assert wilson(0, 0) is None


def stream(i: int, sent: float, gap: float, tokens: int = 16) -> Sample:
    first = sent + 0.05
    times = tuple(first + k * gap for k in range(tokens))
    return Sample(request_id=f"r{i}", target="t", point="c4", scheduled_at=sent, sent_at=sent,
                  status="ok", first_byte_at=first, first_token_at=first, token_times=times,
                  done_at=times[-1], prompt_tokens=32, output_tokens=tokens,
                  tokens_source="usage")


def test_a_point_stores_sectioned_intervals_of_its_rates_and_distributions() -> None:
    # a steady closed loop of 4 streams, each request 16 tokens 20 ms apart, for 10 s
    samples, i = [], 0
    for s in range(4):
        t = s * 0.1
        while t < 11.0:
            samples.append(stream(i, t, 0.02))
            t, i = samples[-1].done_at or t, i + 1
    m = summarize(samples, warmup_end=1.0, load_end=11.0, slo={"ttft_ms": 500})
    assert m.throughput.sections == SECTIONS
    lo, hi = m.throughput.ci95["output_tok_s"] or (0.0, 0.0)
    assert lo <= (m.throughput.output_tok_s or 0.0) <= hi and hi - lo < 0.05 * hi
    assert m.itl_ms is not None and m.itl_ms.ci95["p50"] is not None
    assert m.itl_ms.ci95["mean"] is not None
    assert m.goodput is not None and m.goodput.ci95["fraction"] is not None


@pytest.mark.slow
def test_the_stored_itl_p50_interval_covers_at_least_93_percent_with_16_streams() -> None:
    sim = load_script("interval_coverage")
    got = sim.coverage(sim.Batch(streams=16), "itl", 0.5, trials=150, steps=200)
    assert got["stored"][0] >= 0.93, got
    assert got["order"][0] < 0.6, got  # what pooling every gap as independent gave
