"""locust driver: the locustfile's per-request records as samples, and the user pool it sizes.

`fixtures/locust_records.json` holds records captured from real locust 2.47 runs of
`harness/drivers/locust/locustfile.py` against `tests/stub_target.py` (rebuilt by
`fixtures/regenerate_locust_records.py`, which says what each case is): streaming 4 tokens (ok),
503 (busy), never answering with a 1 s timeout (stall), a closed port (refused), a stream broken
mid-chunk (cut), a 200 body that is not JSON (not_json), one user under 4 arrivals/s of 1 s
requests (overload), and a master with two workers, one of whose clocks is 1000 s off (skewed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.arrivals import plan
from harness.drivers.job import LoadJob
from harness.drivers.locust.driver import (
    count_arrivals,
    read_records,
    samples_from_locust,
    user_steps,
)
from harness.samples import Sample, SampleExtra
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint
from harness.workload.prompts import RequestSpec
from tests.jobs import job_for

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "locust_records.json").read_text())
SPECS = [RequestSpec(index=i, prompt="x", prompt_tokens=8 + i, max_tokens=4) for i in range(2)]


def convert(case: str) -> list[Sample]:
    return samples_from_locust(FIXTURES[case], target="t", point="p", specs=SPECS, stream=True)


def job(point: LoadPoint, connections: int = 0) -> LoadJob:
    return job_for(point, client=ClientSettings(connections=connections), point_start=0.0)


def test_ok_records_carry_per_token_times_on_the_run_clock() -> None:
    samples = convert("ok")
    assert [s.status for s in samples] == ["ok"] * 3
    assert [s.scheduled_at for s in samples] == sorted(s.scheduled_at for s in samples)
    for s in samples:
        assert s.first_byte_at is not None and s.first_token_at is not None  # ok: all set
        assert s.scheduled_at <= s.sent_at <= s.first_byte_at <= s.first_token_at
        assert len(s.token_times) == s.output_tokens == 4
        assert s.first_token_at == s.token_times[0]
        assert s.done_at is not None and s.done_at >= s.token_times[-1]
        assert (s.tokens_source, s.http_status, s.driver) == ("usage", 200, "locust")
        assert s.prompt_tokens == SPECS[int(s.request_id.rsplit("-", 1)[1]) % 2].prompt_tokens


def test_error_records_are_classified_and_dated_by_when_they_failed() -> None:
    assert {(s.status, s.http_status, s.done_at) for s in convert("busy")} == {
        ("refused", 503, None)}
    for case in ("busy", "stall", "refused", "cut", "not_json"):
        for s in convert(case):
            assert s.failed_at is not None and s.failed_at >= s.sent_at, (case, s)
    assert all(s.error is not None and "busy" in s.error for s in convert("busy"))
    stall = convert("stall")
    assert {(s.status, s.first_token_at) for s in stall} == {("timeout", None)}
    assert all(s.extra == SampleExtra(timeout="total") for s in stall)
    assert all(0.99 < (s.failed_at or 0) - s.sent_at < 1.5 for s in stall)  # the 1 s timeout
    refused = convert("refused")
    assert {(s.status, s.http_status) for s in refused} == {("conn_error", None)}
    assert all("Connection refused" in (s.error or "") for s in refused)


def test_a_stream_cut_mid_chunk_is_truncated_with_the_tokens_it_had() -> None:
    for s in convert("cut"):  # geventhttpclient raised HTTPParseError inside the response block
        assert (s.status, s.http_status, s.done_at) == ("truncated", 200, None)
        assert "HTTPParseError" in (s.error or "")
        assert len(s.token_times) == s.output_tokens == 2  # the stub sent two before the cut
        assert s.failed_at is not None and s.failed_at >= s.token_times[-1]


def test_a_body_that_is_not_json_is_an_http_error() -> None:
    samples = samples_from_locust(FIXTURES["not_json"], target="t", point="p", specs=SPECS,
                                  stream=False)
    assert {(s.status, s.http_status) for s in samples} == {("http_error", 200)}
    assert all("JSONDecodeError" in (s.error or "") for s in samples)


def test_never_sent_arrivals_are_counted_not_sampled() -> None:
    records = FIXTURES["overload"]
    samples = convert("overload")
    count = count_arrivals(records, 8)  # 4 arrivals/s for 2 s
    assert len(samples) == count.sent == 3  # one user, 1 s each, until the test stopped
    assert (count.never_sent, count.unrecorded, count.dropped) == (5, 0, 5)
    assert count_arrivals(records, 10).unrecorded == 2  # e.g. a worker lost with its share
    lags = [s.sent_at - s.scheduled_at for s in samples]
    assert lags == sorted(lags) and lags[-1] > 1.0  # the queue grew: dispatch lag shows it


def test_a_worker_clock_1000_s_off_lands_on_the_run_clock() -> None:
    records = FIXTURES["skewed"]
    assert {abs(round(r["off"] - records[0]["off"])) for r in records} == {0, 1000}  # 2 clocks
    samples = convert("skewed")
    seen = FIXTURES["skewed_target_arrivals"]  # when the target read each request (run clock)
    assert len(samples) == len(seen) == 4
    for s, at in zip(samples, seen, strict=True):
        assert s.first_byte_at is not None
        assert s.sent_at - 0.005 <= at <= s.first_byte_at + 0.005  # within the handshake error
        assert 0.05 <= (s.first_token_at or 0) - s.sent_at < 0.5  # the stub's 50 ms TTFT


def test_unknown_status_or_missing_times_are_errors_not_silent_samples() -> None:
    bad = dict(FIXTURES["ok"][0], status="weird")
    with pytest.raises(ValueError, match="weird"):
        samples_from_locust([bad], target="t", point="p", specs=SPECS, stream=True)
    for key in ("off", "fail"):
        record = {k: v for k, v in FIXTURES["busy"][0].items() if k != key}
        with pytest.raises(ValueError, match=str(record["i"])):
            samples_from_locust([record], target="t", point="p", specs=SPECS, stream=True)


def test_read_records_merges_processes_and_skips_cut_lines(tmp_path: Path) -> None:
    a, b = FIXTURES["ok"][:2]
    (tmp_path / "records-1.jsonl").write_text(json.dumps(a) + "\n", encoding="utf-8")
    (tmp_path / "records-2.jsonl").write_text(json.dumps(b) + "\n{\"i\": 3, ",
                                              encoding="utf-8")
    assert read_records(tmp_path) == [a, b]


def test_users_follow_the_concurrency_or_the_rate_and_never_shrink() -> None:
    closed = LoadPoint("c8", "closed", duration_s=5, warmup_s=1, concurrency=8)
    assert user_steps(job(closed), None) == [(0.0, 8)]
    constant = LoadPoint("r5", "constant", duration_s=10, warmup_s=0, rate_rps=5)
    assert user_steps(job(constant), plan(constant, 1)) == [(0.0, 28)]  # 5 req/s × 4 s + 8
    spike = LoadPoint("r5", "spike", duration_s=9, warmup_s=0, rate_rps=5,
                      params={"spike_rate_rps": 20, "spike_start_s": 3,
                              "spike_duration_s": 3})
    assert user_steps(job(spike), plan(spike, 1)) == [(0.0, 28), (3.0, 88)]
    assert user_steps(job(spike, connections=50), plan(spike, 1)) == [(0.0, 28), (3.0, 50)]
