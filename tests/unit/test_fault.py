"""The scenario's `[fault]` table and the sigterm fault's accounting from samples shaped like the
builtin driver's around a rolling restart."""

from __future__ import annotations

from typing import Any

import pytest

from harness.fault import expected_end, shutdown_summary
from harness.samples import Sample, Status
from harness.scenario import parse_scenario
from harness.scenario_fault import Fault, parse_fault
from harness.scenario_values import ScenarioError

BASE: dict[str, Any] = {"load": {"kind": "closed", "concurrency": [8], "duration_s": 6},
                        "targets": [{"name": "fastapi_threadpool"}]}


def test_a_scenario_reads_its_fault_table() -> None:
    scenario = parse_scenario({**BASE, "fault": {"kind": "sigterm", "at_s": 2.0}})
    assert scenario.fault == Fault(kind="sigterm", at_s=2.0)
    assert parse_scenario(BASE).fault is None


@pytest.mark.parametrize(("raw", "points", "message"), [
    ({"kind": "sigkill", "at_s": 1}, 1, "fault.kind must be one of"),
    ({"kind": "sigterm"}, 1, "fault.at_s is required"),
    ({"kind": "sigterm", "at_s": 2, "share": 0.5}, 1, "unknown [fault] keys ['share']"),
    ({"kind": "sigterm", "at_s": 2}, 2, "must have one load point, got 2"),
    ({"kind": "sigterm", "at_s": -1}, 1, "fault.at_s must be >= 0.0"),
    ({"kind": "disconnect", "share": 1.5}, 1, "fault.share must be in (0, 1]"),
    ({"kind": "disconnect", "after_tokens": 0}, 1, "fault.after_tokens must be >= 1"),
    ("sigterm", 1, "[fault] must be a table"),
    ({"kind": "disconnect", "after_tokens": 3, "share": 0.5}, 1, "'disconnect' is not run yet"),
])
def test_a_wrong_fault_is_one_line(raw: Any, points: int, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_fault(raw, points)
    assert message in str(info.value) and "\n" not in str(info.value)


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
