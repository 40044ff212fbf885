"""`Distribution`: the one summary type of every metric's values in summary.json (`harness.summary`
re-exports it; the spike record `harness.summary.spike` uses it without a cycle).

    Distribution.of([12.0, 15.5, None, 40.1])   # count 3, p50 15.5, ...; None values dropped
    Distribution.of([])                         # None: no value, never a silent 0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from harness.metrics.quantiles import percentile, quantile_ci, too_few
from harness.records.typed_json import doc

QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True)
class Distribution:
    """Summary of one metric's values, in the unit its field name states."""

    count: int = doc("number of values")
    mean: float = doc("arithmetic mean")
    p50: float = doc("median (linear interpolation between order statistics)")
    p90: float = doc("90th percentile")
    p95: float = doc("95th percentile")
    p99: float = doc("99th percentile")
    max: float = doc("largest value")
    ci95: dict[str, tuple[float, float] | None] = doc(
        "95% confidence interval [lo, hi] of p50, p90, p95 and p99: the hull of the "
        "distribution-free order-statistic interval (ranks from exact binomial sums, "
        "equal-tailed; harness.metrics.quantiles) and the sectioned one that sees values move "
        "together over time (harness.metrics.sections), and of the mean (sectioned); null where "
        "too few values or sections for either (order statistics: p50 n < 6, p90 n < 29, p95 "
        "n < 59, p99 n < 299)", {})
    too_few: tuple[str, ...] = doc("percentiles whose count is below their floor (p50 14, p90 "
                                    "64, p95 133, p99 662; MLPerf early stopping), p95 and p99 "
                                    "also when effective_count is: shown, marked, refused by "
                                    "the gate", ())
    effective_count: float | None = doc("how many independent values these are worth: count / "
                                        "the design effect sectioning measured (values that move "
                                        "together count less; harness.metrics.sections); null: "
                                        "not measured over time", None)

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Distribution | None:
        """The distribution of the finite values; None when there is none."""
        data = sorted(v for v in values if v is not None and math.isfinite(v))
        if not data:
            return None
        return cls(count=len(data), mean=sum(data) / len(data), p50=percentile(data, 50),
                   p90=percentile(data, 90), p95=percentile(data, 95),
                   p99=percentile(data, 99), max=data[-1],
                   ci95={name: quantile_ci(data, q) for name, q in QUANTILES},
                   too_few=too_few(len(data)))
