"""Clients that retry 503s (`[client] retry_refused`) next to clients that do not, against a stub
server that refuses every request with a 503 and an OpenAI error body, through the real builtin
driver."""

from __future__ import annotations

import random
from typing import Any

from harness.drivers.backoff import RETRY_MAX_S, retry_delay
from harness.drivers.builtin.driver import BuiltinDriver
from harness.drivers.job import Progress
from harness.samples import Clock, Sample
from harness.scenario.client import ClientSettings, parse_client
from harness.scenario.types import LoadPoint, Workload
from tests.jobs import job_for
from tests.stub_target import StubTarget


def refused_run(tokenizer: Any, retries: int) -> list[Sample]:
    clock = Clock()
    workload = Workload(prompt_tokens=8, output_tokens=4)
    point = LoadPoint("c2", "closed", duration_s=5, warmup_s=0, concurrency=2, max_requests=4,
                      params={"ramp_up_s": 0})
    with StubTarget(clock, mode="busy") as target:
        job = job_for(point, workload=workload, url=target.url, clock=clock, timeout_s=5.0,
                      client=ClientSettings(retry_refused=retries, retry_base_s=0.002),
                      tokenizer=tokenizer)
        return BuiltinDriver().run(job, Progress())


def test_a_retrying_client_resends_a_503_keeping_its_scheduled_time(tokenizer: Any) -> None:
    samples = refused_run(tokenizer, retries=3)
    by_request: dict[str, list[Sample]] = {}
    for s in samples:
        by_request.setdefault(s.request_id, []).append(s)
    assert len(by_request) == 4 and all(len(v) == 4 for v in by_request.values())
    for attempts in by_request.values():
        assert all(s.status == "refused" and s.http_status == 503 for s in attempts)
        assert {s.scheduled_at for s in attempts} == {attempts[0].scheduled_at}
        assert [s.attempt for s in attempts] == [1, 2, 3, 4]
        assert [s.extra.attempt for s in attempts] == [None, 2, 3, 4]  # the file's extra.attempt
        sent = [s.sent_at for s in attempts]
        assert sent == sorted(sent) and len(set(sent)) == 4


def test_a_client_that_does_not_retry_sends_each_request_once(tokenizer: Any) -> None:
    samples = refused_run(tokenizer, retries=0)
    assert len(samples) == 4 and all(s.extra.attempt is None for s in samples)


def test_retry_delays_are_jittered_below_a_doubling_cap() -> None:
    rng = random.Random(7)
    delays = [[retry_delay(k, 0.05, rng) for _ in range(200)] for k in range(8)]
    for k, ds in enumerate(delays):
        cap = min(RETRY_MAX_S, 0.05 * 2 ** k)
        assert all(0 <= d <= cap for d in ds)
        assert max(ds) > cap / 2 and min(ds) < cap / 2  # spread over the range, not fixed


def test_the_client_table_reads_the_retry_settings() -> None:
    client = parse_client({"retry_refused": 3, "retry_base_s": 0.1})
    assert (client.retry_refused, client.retry_base_s) == (3, 0.1)
