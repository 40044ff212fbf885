"""Locust as a master and two workers, separate processes, one worker's clock 1000 s off.

A worker on another machine has a monotonic clock that counts from that machine's boot. Here
worker 0 reads its clock shifted by -1000 s (`SKEW_ENV`, honoured by workers only, for this test),
as such a worker's would be; worker 1 by +250 s. The driver (real locust, `--master` /
`--worker` on 127.0.0.1) must still place every request on the run clock by each worker's
handshake offset: the target (`tests/stub_target.py`, in this process, stamping the run clock
itself) must have read each request between its `sent_at` and `first_byte_at`, the latencies
must be the stub's own, and every arrival of the schedule must be sent or counted as never sent.
The load is more than the two users (one per worker) can carry (~1.8 requests/s each, 16
arrivals/s), so most arrivals are never sent.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from harness.arrivals import plan
from harness.drivers.job import Progress
from harness.drivers.locust.clock import SKEW_ENV
from harness.drivers.locust.driver import LocustDriver
from harness.samples import Clock
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint, Workload
from tests.jobs import job_for
from tests.stub_target import StubTarget

TOLERANCE_S = 0.02  # the handshake's error bound on one machine is well under this
TTFT_S = 0.5  # the stub's time to first token


def test_two_workers_with_skewed_clocks_keep_latencies_and_account_for_every_arrival(
        tokenizer: Any) -> None:
    clock = Clock()
    workload = Workload(prompt_tokens=8, output_tokens=4)
    point = LoadPoint("r16", "constant", duration_s=2.5, warmup_s=0, rate_rps=16)
    arrivals = plan(point, 1)
    assert arrivals is not None
    driver = LocustDriver([{SKEW_ENV: "-1000"}, {SKEW_ENV: "250"}])
    began = time.monotonic()
    with StubTarget(clock, "ok", ttft_s=TTFT_S, tokens=4, gap_s=0.01) as target, \
            tempfile.TemporaryDirectory() as tmp:
        job = job_for(point, workload=workload, url=target.url, clock=clock, timeout_s=5.0,
                      client=ClientSettings(processes=2, connections=2), tokenizer=tokenizer,
                      work_dir=Path(tmp))
        progress = Progress()
        samples = driver.run(job, progress)
        seen = sorted(target.arrivals)
    assert time.monotonic() - began < 60
    assert progress.stats["workers"] == 2
    assert progress.started_at is not None
    assert progress.stats["clock_error_ms"] < TOLERANCE_S * 1000

    # Every arrival: sent once, or counted as never sent; the overload dropped some.
    assert len({s.request_id for s in samples}) == len(samples) == len(seen)
    assert progress.dropped is not None and progress.dropped > 0
    assert len(samples) + progress.dropped == len(arrivals)
    assert progress.stats["never_sent"] == progress.dropped and "dropped" in progress.flags

    for s in samples:
        index = int(s.request_id.rsplit("-", 1)[1])
        # The schedule, mapped back from either worker's clock to the run clock.
        assert abs(s.scheduled_at - (progress.started_at + arrivals[index].offset_s)) < 1e-6
        assert s.status == "ok", s
        assert s.first_byte_at is not None and s.first_token_at is not None
        assert s.done_at is not None
        # The target read this request between send and first byte (on its own run clock).
        assert any(s.sent_at - TOLERANCE_S <= at <= s.first_byte_at + TOLERANCE_S
                   for at in seen), s
        assert TTFT_S <= s.first_token_at - s.sent_at < TTFT_S + 0.5  # the stub's TTFT
        assert TTFT_S + 3 * 0.01 <= s.done_at - s.sent_at < TTFT_S + 1.0
        assert s.scheduled_at <= s.sent_at
