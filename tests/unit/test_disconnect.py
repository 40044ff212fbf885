"""The disconnect fault: the real builtin driver abandons its chosen streams against a stub
server that notices each client leave; abandoned samples are counted apart from errors; the
clean-up record from readings of a real /metrics server (our targets' own exporter)."""

from __future__ import annotations

import json
from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

from harness.drivers.backoff import Backoff, ErrorStreak
from harness.drivers.builtin.driver import BuiltinDriver
from harness.drivers.builtin.streaming import abandon_after
from harness.drivers.job import LoadJob, Progress
from harness.metrics.requests import summarize
from harness.records.typed_json import decode
from harness.run.fault import Cleanup, Reading, disconnect_summary
from harness.run.liveness import point_failure
from harness.samples import Clock, Sample, SampleExtra
from harness.scenario.fault import Fault
from harness.scenario.types import LoadPoint, Workload
from harness.summary.record import SCHEMA_VERSION, Load, Requests, RunSummary, TargetRun
from targets.server.stats import Stats
from tests.http_server import serving
from tests.jobs import job_for
from tests.stub_target import StubTarget
from tests.summaries import typed_point
from tests.waiting import wait_for

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "summary.schema.json"
FAULT = Fault(kind="disconnect", after_tokens=3, share=0.5)
REQUESTS, TOKENS = 12, 40


def abandoning_run(tokenizer: Any) -> tuple[list[Sample], Progress, LoadJob, int]:
    """12 streams of 40 tokens, 4 at a time, half of them chosen to leave after 3 chunks;
    returns the samples, the progress, the job and how many streams the server saw leave."""
    clock = Clock()
    workload = Workload(prompt_tokens=8, output_tokens=TOKENS)
    point = LoadPoint("c4", "closed", duration_s=30, warmup_s=0, concurrency=4,
                      max_requests=REQUESTS, params={"ramp_up_s": 0})
    with StubTarget(clock, tokens=TOKENS, gap_s=0.005, ttft_s=0.01) as target:
        job = job_for(point, workload=workload, url=target.url, clock=clock, seed=3,
                      timeout_s=10.0, fault=FAULT, tokenizer=tokenizer)
        progress = Progress()
        samples = BuiltinDriver().run(job, progress)
        gone = sum(s.status == "abandoned" for s in samples)
        wait_for(lambda: target.left >= gone, timeout_s=10, interval_s=0.01,
                 what="the server to see every abandoned stream's socket close")
        return samples, progress, job, target.left


def test_the_chosen_streams_are_closed_after_their_tokens_and_are_no_errors(
        tokenizer: Any) -> None:
    samples, progress, job, left = abandoning_run(tokenizer)
    chosen = {i for i in range(REQUESTS) if abandon_after(job, i)}
    assert 0 < len(chosen) < REQUESTS  # the seed picks some, not all
    elsewhere = replace(job, target="u", point_start=job.point_start + 60)
    assert chosen == {i for i in range(REQUESTS) if abandon_after(elsewhere, i)}
    everyone = replace(job, fault=replace(FAULT, share=1.0))
    assert all(abandon_after(everyone, i) == 3 for i in range(REQUESTS))
    for other in (None, Fault(kind="sigterm", at_s=1.0)):  # no disconnect: every stream is read
        assert not any(abandon_after(replace(job, fault=other), i) for i in chosen)
    by_index = {int(s.request_id.rsplit("-", 1)[1]): s for s in samples}
    assert sorted(by_index) == list(range(REQUESTS))
    assert {i for i, s in by_index.items() if s.status == "abandoned"} == chosen
    assert left == len(chosen)  # each close reached the server as a failed write
    for i, s in by_index.items():
        if i not in chosen:
            assert s.ok and s.output_tokens == TOKENS
            continue
        assert FAULT.after_tokens <= len(s.token_times) < TOKENS
        assert s.output_tokens == len(s.token_times) and s.error is None
        assert s.done_at is None and s.failed_at is not None
        assert s.failed_at >= s.token_times[-1]
        assert s.extra.abandoned_at == pytest.approx(s.failed_at, abs=1e-6)
    assert progress.errors == 0 and progress.abort is None
    metrics = summarize(samples, slo={"ttft_ms": 5000.0})
    assert metrics.requests.abandoned == len(chosen)
    assert metrics.requests.ok == metrics.requests.total == REQUESTS - len(chosen)
    assert metrics.goodput is not None and metrics.goodput.fraction == 1.0


def abandoned(i: int, sent: float) -> Sample:
    """An abandoned sample as the builtin driver writes one against a fast server."""
    times = (sent + 0.0008, sent + 0.0009, sent + 0.001)
    return Sample(request_id=f"t-c4-{i}", target="t", point="c4", scheduled_at=sent,
                  sent_at=sent, status="abandoned", first_byte_at=sent + 0.0005,
                  first_token_at=times[0], token_times=times, failed_at=sent + 0.0011,
                  output_tokens=3, tokens_source="counted", http_status=200,
                  extra=SampleExtra(abandoned_at=round(sent + 0.0011, 6)))


def reset(i: int, sent: float) -> Sample:
    return Sample(request_id=f"t-c4-{i}", target="t", point="c4", scheduled_at=sent,
                  sent_at=sent, status="conn_error", failed_at=sent + 0.0002,
                  error="ClientOSError: [Errno 104] Connection reset by peer")


def test_an_abandoned_stream_neither_backs_off_nor_feeds_the_dead_target_streak() -> None:
    backoff = Backoff()
    assert backoff.after(reset(0, 1.0)) > 0
    assert backoff.after(abandoned(1, 1.1)) == 0.0  # back to no wait, as after a success
    streak = ErrorStreak(limit=3)
    reasons = [streak.observe(s) for s in (reset(0, 1.0), reset(1, 1.1), abandoned(2, 1.2),
                                           reset(3, 1.3), reset(4, 1.4))]
    assert reasons == [None] * 5 and streak.count == 2  # the abandon reset it
    failure = point_failure("the target process exited with code 1", 1.5,
                            [abandoned(0, 1.0), reset(1, 1.1)])
    assert failure.failed_requests == 1 and failure.first_error_at_s == pytest.approx(1.1002)


def stream(i: int, sent: float, tokens: int, abandon: bool = False) -> Sample:
    """A stream read to its end (usage count), or abandoned after `tokens` chunks."""
    times = tuple(sent + 0.1 + 0.01 * k for k in range(tokens))
    end = times[-1] + 0.001
    if abandon:
        return Sample(request_id=f"t-c4-{i}", target="t", point="c4", scheduled_at=sent,
                      sent_at=sent, status="abandoned", first_token_at=times[0],
                      token_times=times, failed_at=end, output_tokens=tokens,
                      tokens_source="counted", http_status=200,
                      extra=SampleExtra(abandoned_at=round(end, 6)))
    return Sample(request_id=f"t-c4-{i}", target="t", point="c4", scheduled_at=sent,
                  sent_at=sent, status="ok", first_token_at=times[0], token_times=times,
                  done_at=end, output_tokens=tokens, tokens_source="usage", http_status=200)


def test_the_record_times_the_clean_up_and_counts_the_tokens_nobody_read() -> None:
    samples = [stream(0, 1.0, 40), stream(1, 1.5, 3, abandon=True),
               stream(2, 1.8, 3, abandon=True), stream(3, 4.0, 40)]
    # Ends: 1.49, 1.621, 1.921, 4.491. Read: 40 + 3 + 3 + 40 = 86 tokens.
    start = Reading(t=0.9, in_flight=0, generated=1000, source="patternbench")
    readings = [Reading(t=4.6, in_flight=1, generated=1150, source="patternbench"),
                Reading(t=4.65, in_flight=0, generated=1160, source="patternbench"),
                Reading(t=4.7, in_flight=0, generated=1160, source="patternbench")]
    record = disconnect_summary(FAULT, samples, start, readings, wait_s=10.0)
    assert (record.kind, record.requests, record.abandoned, record.completed) == (
        "disconnect", 4, 2, 2)
    assert (record.last_abandon_at_s, record.load_end_at_s) == (1.921, 4.491)
    assert record.in_flight_zero_at_s == 4.65 and record.in_flight_left == 0
    assert record.in_flight_zero_after_s == pytest.approx(2.729)
    assert record.in_flight_zero_after_load_s == pytest.approx(0.159)
    assert (record.generated_tokens, record.received_tokens, record.wasted_tokens) == (
        160, 86, 74)
    assert record.wasted_per_abandoned == 37.0
    assert record.signal_at_s is None and record.in_flight_at_signal is None


def test_without_a_counter_or_with_one_that_misses_tokens_waste_is_unknown() -> None:
    samples = [stream(0, 1.0, 40), stream(1, 1.5, 3, abandon=True)]
    blind = Reading(t=2.0, in_flight=None, generated=None)
    record = disconnect_summary(FAULT, samples, blind, [blind], wait_s=10.0)
    assert record.metrics_source is None and record.in_flight_zero_at_s is None
    assert record.generated_tokens is None and record.wasted_tokens is None
    assert record.received_tokens == 43
    relay = [Reading(t=t, in_flight=0, generated=0, source="patternbench") for t in (2.0, 2.05)]
    record = disconnect_summary(FAULT, samples, relay[0], relay, wait_s=10.0)
    assert record.generated_tokens == 0 and record.wasted_tokens is None  # counts none it serves


class Draining(BaseHTTPRequestHandler):
    """A target's /metrics (its real exporter) whose requests in flight end one per scrape,
    each having generated 5 more tokens by then."""

    stats: ClassVar[Stats]
    in_flight: ClassVar[int]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        cls = type(self)
        cls.stats.in_flight.set(cls.in_flight)
        body = cls.stats.render()
        if cls.in_flight > 0:  # before the answer: the next scrape sees it
            cls.in_flight -= 1
            cls.stats.tokens.inc(5)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Silent(BaseHTTPRequestHandler):
    """A server whose /metrics exports none of the names the harness reads."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"# TYPE other_gauge gauge\nother_gauge 3.0\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_watch_polls_until_nothing_is_in_flight_and_the_counter_settled() -> None:
    Draining.stats, Draining.in_flight = Stats("fastapi_batching"), 2
    Draining.stats.tokens.inc(100)
    with serving(Draining) as url:
        watch = Cleanup(FAULT, [url], Clock(), wait_s=30.0, poll_s=0.001)
        readings = watch.wait_idle()
    assert [(r.in_flight, r.generated) for r in readings] == [
        (2, 100), (1, 105), (0, 110), (0, 110)]
    assert all(r.source == "patternbench" and r.answered for r in readings)


def test_the_watch_stops_at_once_when_nothing_in_flight_is_exported() -> None:
    with serving(Silent) as url:
        watch = Cleanup(FAULT, [url], Clock(), wait_s=30.0, poll_s=0.001)
        watch.before()
        readings = watch.wait_idle()
        record = watch.after([], poll=False)
    assert len(readings) == 1 and readings[0].in_flight is None and readings[0].answered
    assert watch.start is not None and watch.start.generated is None
    assert record.generated_tokens is None and record.requests == 0


def test_the_record_reads_back_and_fits_the_schema_and_old_counts_read_as_none_abandoned(
        ) -> None:
    samples = [stream(0, 1.0, 40), stream(1, 1.5, 3, abandon=True)]
    start = Reading(t=0.9, in_flight=0, generated=0, source="patternbench")
    done = [Reading(t=t, in_flight=0, generated=80, source="patternbench") for t in (1.7, 1.75)]
    fault = disconnect_summary(FAULT, samples, start, done, wait_s=10.0)
    metrics = summarize(samples)
    point = typed_point("fastapi_batching", "c8", Load("closed", concurrency=8), fault=fault,
                        requests=metrics.requests)
    summary = RunSummary(schema_version=SCHEMA_VERSION, run="r", scenario="disconnect",
                         interrupted=False, points=(point,),
                         targets={"fastapi_batching": TargetRun("fastapi_batching", {}, "ok")})
    data = json.loads(json.dumps(summary.to_json()))
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert RunSummary.from_json(data) == summary
    assert data["points"][0]["requests"]["abandoned"] == 1
    assert data["points"][0]["requests"]["total"] == 1
    old = {"ok": 3, "http_error": 0, "refused": 1, "timeout": 0, "truncated": 0,
           "conn_error": 0, "total": 4}  # a schema-4 file written before `abandoned`
    assert decode(Requests, old).abandoned == 0
