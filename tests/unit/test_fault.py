"""The scenario's `[fault]` table and the sigterm fault's accounting from samples shaped like the
builtin driver's around a rolling restart."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from harness.run.fault import EXPECTED, SigtermWatch, expected_end, shutdown_summary
from harness.run.liveness import HEALTH_FAILURES, Liveness
from harness.samples import Clock, Sample, Status
from harness.scenario.decode import ScenarioError
from harness.scenario.fault import Fault, parse_fault
from harness.scenario.load import parse_scenario
from tests.waiting import wait_for

BASE: dict[str, Any] = {"load": {"kind": "closed", "concurrency": [8], "duration_s": 6},
                        "targets": [{"name": "fastapi_threadpool"}]}


def test_a_scenario_reads_its_fault_table() -> None:
    scenario = parse_scenario({**BASE, "fault": {"kind": "sigterm", "at_s": 2.0}})
    assert scenario.fault == Fault(kind="sigterm", at_s=2.0)
    assert parse_scenario(BASE).fault is None


def test_a_disconnect_is_read_and_runs_in_the_builtin_driver_only() -> None:
    raw = {"kind": "disconnect", "after_tokens": 4, "share": 0.5}
    scenario = parse_scenario({**BASE, "fault": raw})
    assert scenario.fault == Fault(kind="disconnect", after_tokens=4, share=0.5)
    assert parse_scenario({**BASE, "load": {**BASE["load"], "concurrency": [4, 8]},
                           "fault": raw}).fault is not None  # any number of points
    for driver in ("k6", ["builtin", "locust"]):
        with pytest.raises(ScenarioError) as info:
            parse_scenario({**BASE, "driver": driver, "fault": raw})
        message = str(info.value)
        assert "disconnect' is run by the builtin driver only" in message
        assert "\n" not in message
    with pytest.raises(ScenarioError, match="builtin driver only, not 'locust'"):
        scenario.with_overrides(driver="locust")
    assert scenario.with_overrides(driver="builtin").fault == scenario.fault


def test_a_sigterm_cannot_end_a_capacity_search() -> None:
    with pytest.raises(ScenarioError, match=r"cannot run with load\.kind = 'capacity'"):
        parse_fault({"kind": "sigterm", "at_s": 2.0}, 1, search=True)


@pytest.mark.parametrize(("raw", "points", "message"), [
    ({"kind": "sigkill", "at_s": 1}, 1,
     "fault.kind: must be one of 'sigterm', 'disconnect', 'rolling', got 'sigkill'"),
    ({"at_s": 1}, 1, "fault.kind: must be given"),
    ({"kind": "sigterm"}, 1, "fault.at_s: must be given"),
    ({"kind": "sigterm", "at_s": 2, "share": 0.5}, 1,
     "fault: unknown key 'share' for kind 'sigterm'; expected one of at_s, kind"),
    ({"kind": "sigterm", "at_s": 2}, 2, "fault.kind: 'sigterm' ends the target, so the scenario "
     "must have one load point, got 2"),
    ({"kind": "sigterm", "at_s": -1}, 1, "fault.at_s: must be ≥ 0, got -1"),
    ({"kind": "sigterm", "at_s": "2s"}, 1, "fault.at_s: must be a number, got '2s'"),
    ({"kind": "disconnect", "share": 1.5}, 1, "fault.share: must be in (0, 1], got 1.5"),
    ({"kind": "disconnect", "after_tokens": 0}, 1, "fault.after_tokens: must be ≥ 1, got 0"),
    ("sigterm", 1, "fault: must be a table, got 'sigterm'"),
])
def test_a_wrong_fault_is_one_line(raw: Any, points: int, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_fault(raw, points)
    assert str(info.value) == message


def sample(i: int, sent: float, end: float | None, status: Status,
           http: int | None = 200) -> Sample:
    done = end if status == "ok" else None
    failed = end if status != "ok" else None
    return Sample(request_id=f"r{i}", target="t", point="c8", scheduled_at=sent, sent_at=sent,
                  status=status, done_at=done, failed_at=failed, http_status=http)


def test_the_shutdown_record_counts_streams_around_the_signal() -> None:
    samples = [
        sample(0, 0.5, 1.9, "ok"),  # ended before the signal: not in flight
        sample(1, 1.2, 3.1, "ok"),  # in flight, drained
        sample(2, 1.4, 3.3, "ok"),
        sample(3, 1.8, 3.0, "truncated"),  # in flight, cut
        sample(4, 2.2, 2.21, "refused", 503),  # sent during the drain
        sample(5, 3.6, 3.601, "conn_error", None),  # sent after the exit
        sample(6, 3.7, 3.8, "http_error", 500),
    ]
    record = shutdown_summary(2.0, 3.5, samples)
    assert (record.in_flight_at_signal, record.completed, record.cut) == (3, 2, 1)
    assert (record.sent_after, record.refused_after) == (3, 2)
    assert record.drain_s == pytest.approx(1.5)
    assert expected_end(record, 3.52) and not expected_end(record, 1.0)


def test_a_signal_never_sent_counts_nothing_in_flight() -> None:
    record = shutdown_summary(None, None, [sample(0, 0.5, 1.9, "ok")])
    assert (record.in_flight_at_signal, record.sent_after, record.drain_s) == (0, 0, None)
    assert not expected_end(record, 1.0)


class Draining:
    """A target process as `subprocess.Popen` shows it: SIGTERM starts its drain, and it exits
    once the test lets it (`exit`); no real process is started."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.code: int | None = None
        self.polls = 0  # both watches poll it every tick

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def poll(self) -> int | None:
        self.polls += 1
        return self.code


class Health(BaseHTTPRequestHandler):
    """/health of a draining server: 503 once the drain began (the test's `draining`)."""

    draining = False
    refused = 0  # 503s answered while draining

    def do_GET(self) -> None:
        Health.refused += Health.draining
        self.send_response(503 if Health.draining else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        Health.draining, Health.refused = False, 0


def test_the_watch_signals_at_its_time_and_the_exit_is_expected_not_dead(
        health_url: str) -> None:
    process, clock = Draining(), Clock()
    reasons: list[str] = []
    popen = cast("subprocess.Popen[bytes]", process)
    watch = SigtermWatch(popen, clock, lambda: 0.0, 0.05, on_exit=reasons.append)
    deaths: list[str] = []
    with watch, Liveness(health_url, popen, clock, on_dead=deaths.append,
                         interval_s=0.01, expected=lambda: watch.signalled):
        wait_for(lambda: process.signals == [signal.SIGTERM], timeout_s=10, interval_s=0.01,
                 what="the SIGTERM")
        Health.draining = True  # /health would 503 while draining: not asked once signalled
        polls = process.polls
        wait_for(lambda: process.polls > polls + 4 * HEALTH_FAILURES, timeout_s=10,
                 interval_s=0.01, what="several ticks of both watches during the drain")
        assert not deaths and Health.refused == 0
        process.code = 0  # the drain ended
        wait_for(lambda: bool(reasons) and bool(deaths), timeout_s=10, interval_s=0.01,
                 what="the exit seen by both watches")
    assert watch.signal_at is not None and watch.signal_at >= 0.05
    assert watch.exit_at is not None and watch.exit_at >= watch.signal_at
    assert reasons == [f"{EXPECTED}; the target process exited with code 0"]
    assert deaths == [f"{EXPECTED}; the target process exited with code 0"]
