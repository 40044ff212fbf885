"""One frozen record per request, on one monotonic clock.

Every driver (builtin, k6, locust) turns what it saw into `Sample` records, so metrics and reports
never care which tool produced the load. All times are seconds since the run's clock origin
(`Clock.origin_ns`, taken from `time.perf_counter_ns()`), never wall-clock time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.records.atomic import write_text

Status = Literal["ok", "http_error", "refused", "timeout", "truncated", "conn_error", "abandoned"]
STATUSES: tuple[Status, ...] = ("ok", "http_error", "refused", "timeout", "truncated", "conn_error",
                                "abandoned")
"""`abandoned`: the client closed the stream itself (`[fault] kind = "disconnect"`): its choice,
never a failure of the target (not an error in metrics, back-off or the dead-target streak)."""

TokenSource = Literal["usage", "counted", "requested", "unknown"]


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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        """Not ok, and not abandoned by its client (which is its choice, not a failure)."""
        return self.status not in ("ok", "abandoned")

    def to_json(self) -> str:
        data = asdict(self)
        data["token_times"] = [round(t, 6) for t in self.token_times]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        data = dict(data)
        data["token_times"] = tuple(data.get("token_times") or ())
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
