"""locust driver: the locustfile's per-request records as samples, and the user pool it sizes.

`fixtures/locust_records.json` holds records captured from real locust 2.47 runs of
`harness/drivers/locust/locustfile.py` (local runner, 2 users): against the echo target streaming
4 tokens (ok), a server answering 503 (busy), one that never answers with a 1 s timeout
(stall), and a closed port (refused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.arrivals import plan
from harness.drivers.job import LoadJob
from harness.drivers.locust.driver import read_records, samples_from_locust, user_steps
from harness.samples import Clock, Sample
from harness.scenario import LoadPoint, Workload
from harness.workload import RequestSpec

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "locust_records.json").read_text())
SPECS = [RequestSpec(index=i, prompt="x", prompt_tokens=8 + i, max_tokens=4) for i in range(2)]


def convert(case: str) -> list[Sample]:
    return samples_from_locust(FIXTURES[case], target="t", point="p", specs=SPECS, stream=True)


def job(point: LoadPoint, connections: int = 0) -> LoadJob:
    return LoadJob(target="t", base_url="http://127.0.0.1:1", model_name="m", point=point,
                   workload=Workload(), prompts=None,  # type: ignore[arg-type]  # unused here
                   clock=Clock(), point_start=0.0, seed=1, connections=connections)


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


def test_error_records_are_classified() -> None:
    assert {(s.status, s.http_status, s.done_at) for s in convert("busy")} == {
        ("refused", 503, None)}
    assert all(s.error is not None and "busy" in s.error for s in convert("busy"))
    stall = convert("stall")
    assert {(s.status, s.first_token_at) for s in stall} == {("timeout", None)}
    assert all(s.extra == {"timeout": "total"} for s in stall)
    refused = convert("refused")
    assert {(s.status, s.http_status) for s in refused} == {("conn_error", None)}
    assert all("Connection refused" in (s.error or "") for s in refused)


def test_unknown_status_is_an_error_not_a_silent_sample() -> None:
    bad = dict(FIXTURES["ok"][0], status="weird")
    with pytest.raises(ValueError, match="weird"):
        samples_from_locust([bad], target="t", point="p", specs=SPECS, stream=True)


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
