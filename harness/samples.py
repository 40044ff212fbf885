"""One frozen record per request, on one monotonic clock.

Every driver (builtin, k6, locust) turns what it saw into `Sample` records, so metrics and reports
never care which tool produced the load. All times are seconds since the run's clock origin
(`Clock.origin_ns`, taken from `time.perf_counter_ns()`), never wall-clock time.

A samples file is JSON Lines, one `Sample` a line; its `extra` object holds only the notes a
driver set (`SampleExtra`), e.g. a retried timeout's

    {"request_id": "t-c2-7", ..., "status": "timeout", ...,
     "extra": {"timeout": "first_token", "after_s": 0.5012, "attempt": 2}}
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from harness.records.atomic import write_text
from harness.records.typed_json import decode

Status = Literal["ok", "http_error", "refused", "timeout", "truncated", "conn_error", "abandoned"]
STATUSES: tuple[Status, ...] = ("ok", "http_error", "refused", "timeout", "truncated", "conn_error",
                                "abandoned")
"""`abandoned`: the client closed the stream itself (`[fault] kind = "disconnect"`): its choice,
never a failure of the target (not an error in metrics, back-off or the dead-target streak)."""

TokenSource = Literal["usage", "counted", "requested", "unknown"]
TimeoutPhase = Literal["connect", "first_token", "between_tokens", "total", "stop"]
TIMEOUT_PHASES: tuple[TimeoutPhase, ...] = ("connect", "first_token", "between_tokens", "total",
                                            "stop")
"""Which timeout ended a request: the TCP connect, no first token in time, a later gap between
stream reads, the request as a whole, or (locust) still in flight when the test stopped."""


def timeout_phase(value: object) -> TimeoutPhase:
    """`value` (a load tool's record field) as a `TimeoutPhase`; ValueError if it is none."""
    for phase in TIMEOUT_PHASES:
        if value == phase:
            return phase
    raise ValueError(f"unknown timeout phase {value!r}; expected one of {list(TIMEOUT_PHASES)}")


class Clock:
    """The run's single monotonic clock. `now()` is seconds since `origin_ns`.

    `time.perf_counter_ns()` is CLOCK_MONOTONIC on Linux, shared by every process on the machine,
    so driver subprocesses can stamp times with the same origin passed to them as an integer.
    """

    def __init__(self, origin_ns: int | None = None) -> None:
        self.origin_ns = time.perf_counter_ns() if origin_ns is None else origin_ns

    def now(self) -> float:
        return (time.perf_counter_ns() - self.origin_ns) / 1e9

    def at(self, perf_counter_ns: int) -> float:
        """Convert a raw `perf_counter_ns()` reading into seconds on this clock."""
        return (perf_counter_ns - self.origin_ns) / 1e9


@dataclass(frozen=True)
class SampleExtra:
    """What a driver noted about one request besides its times and status; None: not noted.
    Written as the sample's `extra` object with the fields set only, in this order.

    `attempt` is what the next stage reads (`harness.metrics.spike` groups a user's retries):
    use `Sample.attempt`, which is 1 for a first send.
    """

    k6_error_code: int | None = None  # k6's error code of a request without a response
    timeout: TimeoutPhase | None = None  # which timeout ended it (status `timeout`)
    after_s: float | None = None  # builtin: s after sending that the timeout fired
    abandoned_at: float | None = None  # run clock: the client closed the stream (`abandoned`)
    attempt: int | None = None  # builtin, `retry_refused`: a resend's number (2, 3, ...)
    resent: bool | None = None  # builtin: lost on a stale kept-alive connection, sent again
    session: str | None = None  # multi-turn: user stream and conversation, e.g. "3-0"
    turn: int | None = None  # multi-turn: the turn in its conversation (0 = the first)

    def to_dict(self) -> dict[str, Any]:
        """The fields set, in declaration order (the samples file's `extra` object)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleExtra:
        """An `extra` object as written by `to_dict` (every samples file so far); a key that is
        not a field is an error (`harness.records.typed_json.RecordError`)."""
        return decode(cls, data, "extra") if data else NO_EXTRA


NO_EXTRA = SampleExtra()


@dataclass(frozen=True)
class Sample:
    """What happened to one request. Times are seconds on the run clock; None = never happened.

    `scheduled_at` is when the request *should* have been sent (open-loop arrivals, or the moment a
    closed-loop slot freed up); `sent_at` is when the driver actually wrote it. Latency from
    `scheduled_at` includes client-side queueing (no coordinated omission); from `sent_at` it is
    service time only.
    """

    request_id: str
    target: str
    point: str
    scheduled_at: float
    sent_at: float
    status: Status
    first_byte_at: float | None = None
    first_token_at: float | None = None
    token_times: tuple[float, ...] = ()
    done_at: float | None = None
    failed_at: float | None = None  # when a request not ok ended (timeout fired, 503, abandon)
    prompt_tokens: int = 0
    output_tokens: int = 0
    tokens_source: TokenSource = "unknown"
    http_status: int | None = None
    error: str | None = None
    stream: bool = True
    driver: str = "builtin"
    extra: SampleExtra = NO_EXTRA

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        """Not ok, and not abandoned by its client (which is its choice, not a failure)."""
        return self.status not in ("ok", "abandoned")

    @property
    def attempt(self) -> int:
        """Which send of its request this is: 1, or 2, 3, ... for the builtin driver's retries
        of a 503 (`[client] retry_refused`)."""
        return self.extra.attempt or 1

    def to_json(self) -> str:
        data = asdict(self)
        data["token_times"] = [round(t, 6) for t in self.token_times]
        data["extra"] = self.extra.to_dict()
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        data = dict(data)
        data["token_times"] = tuple(data.get("token_times") or ())
        data["extra"] = SampleExtra.from_dict(data.get("extra") or {})
        return cls(**data)


def write_samples(path: Path, samples: Iterable[Sample]) -> None:
    """Write samples as JSONL atomically: a temp file in the same folder, then rename."""
    write_text(path, (sample.to_json() + "\n" for sample in samples))


def read_samples(path: Path) -> list[Sample]:
    return list(iter_samples(path))


def iter_samples(path: Path) -> Iterator[Sample]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield Sample.from_dict(json.loads(line))
