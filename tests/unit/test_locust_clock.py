"""The locust driver's clock scheme and failure classification, called directly.

`offset_from_pings` places a worker's clock on the run clock from its handshake with the master;
`failed_read` names the failure an exception inside the response block was, with the exception
classes geventhttpclient really raises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from harness.drivers.locust.clock import ClockOffset, exact_offset, offset_from_pings
from harness.drivers.locust.record import failed_read, settle


def test_the_shortest_round_trip_sets_the_offset_and_its_error() -> None:
    # A worker whose clock reads 1000 s less than the run clock; the master answers 2 ms after
    # the ping leaves: round trips of 10 ms, 4 ms and 30 ms.
    pings = [(5.000, 1005.002, 5.010), (6.000, 1006.002, 6.004), (7.000, 1007.020, 7.030)]
    best = offset_from_pings(pings)
    assert best == ClockOffset(offset_s=1000.0, error_s=0.002)  # 1006.002 - 6.002; 4 ms / 2
    # The true offset is 1000 s: the error bound holds for every ping.
    for t0, run, t1 in pings:
        assert abs(offset_from_pings([(t0, run, t1)]).offset_s - 1000.0) <= (t1 - t0) / 2


def test_no_answer_or_time_going_backwards_is_an_error() -> None:
    with pytest.raises(ValueError, match="no clock handshake"):
        offset_from_pings([])
    with pytest.raises(ValueError, match="before it was sent"):
        offset_from_pings([(2.0, 10.0, 1.0)])


def test_on_the_harness_machine_the_offset_is_exact() -> None:
    assert exact_offset(local_origin_ns=5_500_000_000, run_origin_ns=2_000_000_000) == \
        ClockOffset(offset_s=3.5, error_s=0.0)


def record(http: int | None, tokens: int = 0) -> dict[str, Any]:
    return {"http": http, "tok": [1.0 + i / 10 for i in range(tokens)], "n": None, "done": None,
            "fail": None, "status": "ok", "err": None}


@pytest.mark.parametrize(("http", "exc", "stream", "status"), [
    (200, HTTPConnectionClosed("connection closed."), True, "truncated"),
    (200, HTTPParseError("Incomplete response."), True, "truncated"),
    (200, ConnectionResetError(104, "Connection reset by peer"), True, "truncated"),
    (200, json.JSONDecodeError("Expecting value", "hello", 0), False, "http_error"),
    (503, HTTPConnectionClosed("connection closed."), False, "refused"),
    (500, HTTPParseError("bad"), False, "http_error"),
    (None, OSError("network is unreachable"), True, "conn_error"),
])
def test_every_exception_in_the_response_block_is_a_classified_failure(
        http: int | None, exc: Exception, stream: bool, status: str) -> None:
    rec = record(http, tokens=2)
    failed_read(rec, exc, stream=stream)
    settle(rec, now=7.5)
    assert rec["status"] == status
    assert rec["err"].startswith(type(exc).__name__)
    assert (rec["done"], rec["fail"]) == (None, 7.5)  # a failure is dated, never `done`
    if stream:
        assert rec["n"] == 2  # the tokens it had before it broke


def test_a_failure_keeps_the_time_it_was_read() -> None:
    rec = dict(record(503), status="refused", done=3.25)  # the 503 body was read at 3.25
    settle(rec, now=9.0)
    assert (rec["done"], rec["fail"]) == (None, 3.25)
