"""Samples: frozen records, JSONL round trip, atomic writes, one clock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.records.typed_json import RecordError
from harness.samples import (
    Clock,
    Sample,
    SampleExtra,
    iter_samples,
    read_samples,
    timeout_phase,
    write_samples,
)

OK = Sample(  # a multi-turn session's second turn, as the builtin driver writes it
    request_id="r-c8-1", target="flask_threads", point="c8", scheduled_at=2.5, sent_at=2.500125,
    status="ok", first_byte_at=2.51, first_token_at=2.512345, token_times=(2.512345, 2.52, 2.531),
    done_at=2.531, prompt_tokens=128, output_tokens=3, tokens_source="usage", http_status=200,
    extra=SampleExtra(session="3-0", turn=1),
)
FAILED = Sample(  # k6's request timeout: no response, so no status code
    request_id="r-c8-2", target="flask_threads", point="c8", scheduled_at=3.0, sent_at=3.25,
    status="timeout", failed_at=4.25, error="timeout (total): request timeout", stream=False,
    tokens_source="unknown", driver="k6", extra=SampleExtra(k6_error_code=1050, timeout="total"),
)
EACH_EXTRA = Path(__file__).parent / "fixtures" / "samples_each_extra.jsonl"
"""One sample of each driver × status × `extra` shape, as real runs wrote them before `extra` was
typed (builtin: ok, refused, retried, abandoned, timed out, multi-turn; k6 and locust timeouts)."""


def test_round_trip_is_equal(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_samples(path, [OK, FAILED])
    back = read_samples(path)
    assert back == [OK, FAILED]
    assert isinstance(back[0].token_times, tuple)
    assert back[1].token_times == ()
    assert back[1].first_token_at is None


def test_one_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_samples(path, iter([OK, FAILED]))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["r-c8-1", "r-c8-2"]
    assert json.loads(lines[0])["token_times"] == [2.512345, 2.52, 2.531]


def test_files_written_before_extra_was_typed_read_and_write_back_the_same() -> None:
    lines = EACH_EXTRA.read_text(encoding="utf-8").splitlines()
    samples = read_samples(EACH_EXTRA)
    assert [s.to_json() for s in samples] == lines
    shapes = {(s.driver, s.status, tuple(s.extra.to_dict())) for s in samples}
    assert {("builtin", "refused", ("attempt",)), ("builtin", "ok", ("session", "turn")),
            ("builtin", "timeout", ("timeout", "after_s")),
            ("builtin", "abandoned", ("abandoned_at",)), ("locust", "timeout", ("timeout",)),
            ("k6", "timeout", ("k6_error_code", "timeout"))} <= shapes
    attempts = [(s.attempt, s.extra.attempt) for s in samples]
    assert (3, 3) in attempts and all(a == e >= 2 if e else a == 1 for a, e in attempts)


def test_extra_holds_only_the_notes_set_in_a_fixed_order() -> None:
    retried_timeout = SampleExtra(attempt=2, after_s=0.5012, timeout="first_token")
    assert list(retried_timeout.to_dict()) == ["timeout", "after_s", "attempt"]
    line = json.loads(dataclasses.replace(FAILED, extra=retried_timeout).to_json())
    assert line["extra"] == {"timeout": "first_token", "after_s": 0.5012, "attempt": 2}
    assert json.loads(dataclasses.replace(FAILED, extra=SampleExtra()).to_json())["extra"] == {}


def test_an_unknown_extra_key_or_timeout_phase_is_an_error() -> None:
    data = json.loads(OK.to_json())
    with pytest.raises(RecordError, match=r"extra: unknown field\(s\) \['retries'\]"):
        Sample.from_dict({**data, "extra": {"retries": 0}})
    with pytest.raises(RecordError, match=r"extra\.timeout: expected one of"):
        Sample.from_dict({**data, "extra": {"timeout": "read"}})
    assert timeout_phase("stop") == "stop"
    with pytest.raises(ValueError, match="unknown timeout phase 'read'"):
        timeout_phase("read")


def test_token_times_are_stored_to_the_microsecond() -> None:
    s = dataclasses.replace(OK, token_times=(1.23456789, 2.0000004))
    assert Sample.from_dict(json.loads(s.to_json())).token_times == (1.234568, 2.0)


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    path.write_text(f"\n{OK.to_json()}\n\n{FAILED.to_json()}\n  \n", encoding="utf-8")
    assert list(iter_samples(path)) == [OK, FAILED]


def test_no_samples_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_samples(path, [])
    assert path.read_bytes() == b""
    assert read_samples(path) == []


def test_write_creates_folders_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "flask_threads" / "c8.jsonl"
    write_samples(path, [OK, FAILED])
    write_samples(path, [FAILED])
    assert read_samples(path) == [FAILED]
    assert sorted(p.name for p in path.parent.iterdir()) == ["c8.jsonl"]


def failing_after_one() -> Iterator[Sample]:
    yield FAILED
    raise RuntimeError("driver crashed")


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_samples(path, [OK])
    with pytest.raises(RuntimeError, match="driver crashed"):
        write_samples(path, failing_after_one())
    assert read_samples(path) == [OK]


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.jsonl"
    write_samples(path, [OK])
    with pytest.raises(RuntimeError, match="driver crashed"):
        write_samples(path, failing_after_one())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.jsonl"]


def test_sample_is_frozen_and_ok_follows_status() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        OK.status = "timeout"  # type: ignore[misc]  # assigning to a frozen field is the point
    assert OK.ok
    assert not FAILED.ok
    assert not dataclasses.replace(OK, status="truncated").ok


def test_clock_converts_raw_readings_to_seconds_since_origin() -> None:
    clock = Clock(origin_ns=1_000_000_000)
    assert clock.origin_ns == 1_000_000_000
    assert clock.at(3_500_000_000) == 2.5
    assert clock.at(1_000_000_000) == 0.0
    assert clock.at(999_000_000) == -0.001
