"""End to end: an open-loop spike through the real CLI, a real sim target admitting 2 running
and none waiting, and the builtin driver with clients that retry 503s (a per-target `client`
override). The spike is refused in part, the point's `spike` record holds its phases, retries
and memory, and the report's Production behaviour table has its overload row."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_faults import run_cli
from tests.manifests import read_manifest_checked
from tests.summaries import read_checked

# 16 tokens in 0.02 + 15 × 0.005 = 0.095 s on 2 workers: ~21 req/s; the spike is 100 req/s.
SPIKE = """
name = "spike_e2e"
model = "sim:ttft_ms=20,tpot_ms=5,gil=release"
seed = 11
timeout_s = 30

[workload]
prompt_tokens = 16
output_tokens = 16
stream = true
ignore_eos = true

[load]
kind = "spike"
rate_rps = 8
spike_rate_rps = 100
spike_start_s = 1.5
spike_duration_s = 1
duration_s = 4
warmup_s = 0.5

[[targets]]
name = "fastapi_threadpool"
label = "limited_retry"
options = { workers = 2, max_concurrency = 2, max_queue = 0 }
client = { retry_refused = 2, retry_base_s = 0.05 }
"""


def test_a_spike_is_refused_in_part_and_accounted_for(tmp_path: Path) -> None:
    code, err, run_dir = run_cli(tmp_path, SPIKE)
    assert code == 0, err[-3000:]
    (point,) = read_checked(run_dir).points
    spike = point.spike
    assert spike is not None and spike.retry_refused == 2
    assert spike.end_s - spike.start_s == pytest.approx(1.0, abs=1e-3)
    during = spike.during
    assert during.refused > 0 and during.refused_share is not None
    assert during.users > 0 and during.sent >= during.users
    assert during.attempts_max is not None and during.attempts_max > 1  # the override retried
    assert during.answered + during.gave_up + during.failed == during.users
    assert spike.before.sent > 0 and spike.after.sent > 0
    assert (spike.recovery_s is None) != (spike.not_recovered is None)
    assert spike.rss_start_mb is not None and spike.rss_growth_mb is not None
    assert spike.rss_growth_mb >= 0

    html = next((tmp_path / "reports").glob("*/index.html")).read_text()
    assert "overload: a spike to" in html
    assert "users (clients retrying each 503 up to 2 times)" in html
    resolved = read_manifest_checked(run_dir).scenario.resolved
    assert resolved is not None
    (target,) = resolved.targets
    assert target.client is not None and target.client.retry_refused == 2
