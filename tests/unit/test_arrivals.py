"""Arrival schedules: closed has none; constant and poisson are seeded offsets over the point."""

from __future__ import annotations

import itertools
import statistics

import pytest

from harness.arrivals import schedule
from harness.scenario import LoadPoint


def point(kind: str, rate_rps: float | None = None, duration_s: float = 4.0,
          warmup_s: float = 1.0, max_requests: int = 0) -> LoadPoint:
    return LoadPoint(name="p", kind=kind, duration_s=duration_s, warmup_s=warmup_s,
                     concurrency=4 if kind == "closed" else None, rate_rps=rate_rps,
                     max_requests=max_requests)


def test_closed_has_no_schedule() -> None:
    assert schedule(point("closed"), seed=1) is None


def test_constant_rate_count_and_spacing() -> None:
    # 4 req/s over 1 s warm-up + 4 s measured: 20 requests, one every 0.25 s from 0.
    offsets = schedule(point("constant", rate_rps=4), seed=1)
    assert offsets == pytest.approx([i * 0.25 for i in range(20)])
    assert offsets is not None and offsets[-1] < 5.0


def test_constant_rate_does_not_depend_on_seed() -> None:
    assert schedule(point("constant", rate_rps=3), 1) == schedule(point("constant", rate_rps=3), 2)


def test_constant_rate_count_survives_float_rounding() -> None:
    # 0.57 req/s for 100 s is exactly 57 requests (at 0, 1/0.57, ... 56/0.57 = 98.2 s);
    # 100 * 0.57 is 56.99999999999999 in floating point.
    offsets = schedule(point("constant", rate_rps=0.57, duration_s=100, warmup_s=0), seed=1)
    assert offsets is not None
    assert len(offsets) == 57


def test_constant_max_requests_caps_the_schedule() -> None:
    offsets = schedule(point("constant", rate_rps=4, max_requests=7), seed=1)
    assert offsets == pytest.approx([i * 0.25 for i in range(7)])


def test_poisson_is_reproducible_by_seed() -> None:
    p = point("poisson", rate_rps=20, duration_s=30)
    first = schedule(p, seed=11)
    assert first is not None and len(first) > 100
    assert schedule(p, seed=11) == first
    assert schedule(p, seed=12) != first


def test_poisson_offsets_increase_within_the_point() -> None:
    offsets = schedule(point("poisson", rate_rps=20, duration_s=30), seed=3)
    assert offsets is not None
    assert all(a < b for a, b in itertools.pairwise(offsets))
    assert offsets[0] > 0.0
    assert offsets[-1] < 31.0


def test_poisson_mean_rate_and_exponential_gaps() -> None:
    # 50 req/s over 400 s: the count is Poisson(20,000), standard deviation 141; bound ±4.5 σ.
    offsets = schedule(point("poisson", rate_rps=50, duration_s=399, warmup_s=1), seed=2026)
    assert offsets is not None
    assert 19_360 <= len(offsets) <= 20_640
    gaps = [b - a for a, b in zip([0.0, *offsets], offsets, strict=False)]
    mean_gap = statistics.fmean(gaps)
    # Mean gap 1/50 = 0.02 s with standard error 0.02/sqrt(20,000) = 0.00014 s; the bound is 4 SE.
    assert 0.0194 <= mean_gap <= 0.0206
    # Exponential gaps have a coefficient of variation of 1 (a constant schedule has 0).
    assert 0.95 <= statistics.stdev(gaps) / mean_gap <= 1.05


def test_poisson_max_requests_keeps_the_first_arrivals() -> None:
    p = point("poisson", rate_rps=50, duration_s=20)
    full = schedule(p, seed=5)
    capped = schedule(point("poisson", rate_rps=50, duration_s=20, max_requests=100), seed=5)
    assert full is not None and len(full) > 100
    assert capped == full[:100]
