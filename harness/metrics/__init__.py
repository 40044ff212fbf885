"""Metrics: pure functions of samples and telemetry. `requests` summarizes one load
point (TTFT, TPOT, ITL, E2E, throughput, goodput); `distribution` and `quantiles` are the one
summary type of a metric's values and how far to trust its percentiles; `repeats` and `change`
compare measurements; `spike` accounts a spike point. Nothing here prints, plots or writes.
"""
