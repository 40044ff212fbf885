"""The locustfile `harness.drivers.locust.driver` runs: never import it from the harness
(importing locust monkey-patches the standard library with gevent). Locust loads it by path in
every locust process.

What it does, in each process (local runner, or each worker of a distributed run):

- `StreamingUser` (a `FastHttpUser`) sends the point's requests, reads the SSE stream event by
  event (`readline(b"\\n\\n")` on geventhttpclient's response) and stamps, on the run clock
  (`perf_counter_ns` minus the origin the harness passed, shared by every process on Linux),
  the scheduled, sent, first-byte, per-token and done times of each request.
- It reports each request through locust's own `request` event, with the times in its `context`;
  a listener writes them as one JSON line to `records-<pid>.jsonl` (see `RECORD_KEYS`).
- Closed loop: each user sends its next request as soon as the last one ended. Open loop: the
  users of a process take the schedule's arrivals (process k of N: arrivals k, k+N, ...) in order,
  each sleeping until its arrival is due; when every user is busy an arrival waits, and that wait
  is recorded as dispatch lag (locust itself is closed-loop: a user is a loop, so the pool must be
  large enough for the in-flight requests, which the harness sizes).
- Start: each process writes `ready-<pid>` when its test starts; the harness then writes
  `start.json` (the load's start on the run clock), which users and shape wait for, so a slow
  boot or worker connection never eats into the schedule.
- `PlanShape` (a `LoadTestShape`) sets the user count over time (growing with the intended rate
  for ramp and spike, never shrinking, so no in-flight request is cut) and ends the test at the
  end of the point; locust's `--stop-timeout` lets in-flight requests finish.

Timeouts: connect (`connection_timeout`), and first token / between tokens / total as gevent
timeouts around the request, each classified in the record.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.exception import StopUser

from harness.sse import SSEParser, read_chunk

SPAWN_RATE = 100  # users per second (locust warns above 100)
START_FILE = "start.json"
RECORD_KEYS = ("i", "sched", "sent", "fb", "tok", "done", "status", "http", "n", "src", "err",
               "timeout")
PLAN_ENV = "PATTERNBENCH_LOCUST_PLAN"


class _Expired(BaseException):
    """Raised by a gevent timer when a request phase runs out (BaseException: no library code
    catches it on the way)."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


class _Process:
    """This locust process's plan, its share of the requests and its record file."""

    def __init__(self) -> None:
        with open(os.environ[PLAN_ENV], encoding="utf-8") as fh:
            self.plan: dict[str, Any] = json.load(fh)
        self.origin_ns = int(self.plan["origin_ns"])
        self.out: IO[str] | None = None
        self.flushed = 0.0
        self.started: float | None = None
        self.next: Iterator[tuple[int, float | None]] | None = None

    def now(self) -> float:
        return (time.perf_counter_ns() - self.origin_ns) / 1e9

    def ready(self) -> None:
        """Tell the harness this process has started its test (users are being spawned)."""
        path = os.path.join(self.plan["records_dir"], f"ready-{os.getpid()}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("ready\n")

    def start_at(self) -> float | None:
        """When the load starts (run clock): set by the harness once every process is ready."""
        if self.started is None:
            path = os.path.join(self.plan["records_dir"], START_FILE)
            if os.path.exists(path):
                with open(path, encoding="utf-8") as fh:
                    self.started = float(json.load(fh)["start_at"])
        return self.started

    def wait_start(self) -> float:
        while (start := self.start_at()) is None:
            gevent.sleep(0.02)
        return start

    def load_end(self) -> float | None:
        start = self.start_at()
        return None if start is None else start + float(self.plan["point_s"])

    def share(self, environment: Environment) -> Iterator[tuple[int, float | None]]:
        """(index, due run-clock time or None for closed loop) of this process's requests."""
        if self.next is None:
            runner = environment.runner
            k = int(getattr(runner, "worker_index", 0) or 0) if runner is not None else 0
            n = int(self.plan["processes"])
            schedule = self.plan["schedule"]
            start = self.wait_start()
            if schedule is None:
                cap = int(self.plan["max_requests"])
                indices = range(k, cap, n) if cap else itertools.count(k, n)
                self.next = ((i, None) for i in indices)
            else:
                self.next = ((i, start + float(schedule[i])) for i in range(k, len(schedule), n))
        return self.next

    def record(self, data: dict[str, Any]) -> None:
        if self.out is None:
            self.out = open(  # noqa: SIM115 - closed at test stop / quit
                os.path.join(self.plan["records_dir"], f"records-{os.getpid()}.jsonl"), "a",
                encoding="utf-8")
        self.out.write(json.dumps(data, separators=(",", ":")) + "\n")
        now = time.monotonic()
        if now - self.flushed > 1.0:  # the harness counts lines for its progress display
            self.out.flush()
            self.flushed = now

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


class _Phases:
    """One gevent timer for the request phase under way, re-armed at every stream event."""

    def __init__(self, total_end: float) -> None:
        self.total_end = total_end
        self.timer: gevent.Timeout | None = None

    def arm(self, now: float, seconds: float, phase: str) -> None:
        self.close()
        left = self.total_end - now
        if left <= seconds:
            seconds, phase = left, "total"
        self.timer = gevent.Timeout(max(seconds, 0.0), _Expired(phase))
        self.timer.start()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.close()
            self.timer = None


_PROCESS: _Process | None = None


def process() -> _Process:
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = _Process()
    return _PROCESS


def _on_request(context: dict[str, Any] | None = None, **_: Any) -> None:
    record = (context or {}).get("patternbench")
    if record is not None:
        process().record(record)


def _on_start(**_: Any) -> None:
    process().ready()


def _on_stop(**_: Any) -> None:
    process().flush()


def _on_quit(**_: Any) -> None:
    process().flush()


# A locustfile registers its listeners when locust loads it (locust's own convention).
# (EventHook.add_listener carries no annotations, hence the ignores.)
events.request.add_listener(_on_request)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_stop)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quit)  # type: ignore[no-untyped-call]


class StreamingUser(FastHttpUser):
    """Sends the plan's requests one at a time and records their times (see module docstring)."""

    concurrency = 1
    max_retries = 0

    def on_start(self) -> None:
        plan = process().plan
        self.connection_timeout = float(plan["connect_s"])
        self.network_timeout = float(plan["total_s"])

    @task
    def send(self) -> None:
        proc = process()
        start = proc.wait_start()
        end = start + float(proc.plan["point_s"])
        try:
            index, due = next(proc.share(self.environment))
        except StopIteration:
            self._idle_until(end)
            raise StopUser() from None
        wait = (due if due is not None else start) - proc.now()
        if wait > 0:
            gevent.sleep(wait)
        now = proc.now()
        if due is None and now >= end:
            raise StopUser()
        self._one(index, due if due is not None else now)

    def _idle_until(self, end: float) -> None:
        left = end - process().now()
        if left > 0:
            gevent.sleep(left)

    def _one(self, index: int, scheduled: float) -> None:
        proc = process()
        plan = proc.plan
        bodies = plan["bodies"]
        rec: dict[str, Any] = {"i": index, "sched": scheduled, "sent": proc.now(), "fb": None,
                               "tok": [], "done": None, "status": "ok", "http": None, "n": None,
                               "src": "counted", "err": None, "timeout": None}
        phases = _Phases(rec["sent"] + float(plan["total_s"]))
        phases.arm(proc.now(), float(plan["first_token_s"]), "first_token")
        reported = False
        try:
            resp: Any = self.client.request(
                "POST", plan["path"], data=bodies[index % len(bodies)], headers=plan["headers"],
                stream=True, catch_response=True, name=plan["name"])
            with resp:
                self._read(resp, rec, phases)
                end = rec["done"] or proc.now()
                resp.request_meta["response_time"] = (end - rec["sent"]) * 1000
                resp.request_meta["context"] = {"patternbench": rec}
                if rec["status"] == "ok":
                    resp.success()
                else:
                    resp.failure(rec["err"] or rec["status"])
            reported = True
        except _Expired as exc:
            rec.update(status="timeout", timeout=exc.phase, done=None,
                       err=f"timeout ({exc.phase})")
        finally:
            phases.close()
        if not reported:
            self._report(rec)

    def _read(self, resp: Any, rec: dict[str, Any], phases: _Phases) -> None:
        """Fill `rec` from the response; phase timers raise `_Expired` out of here."""
        proc = process()
        rec["http"] = resp.status_code or None
        error = getattr(resp, "error", None)
        raw = getattr(resp, "_response", None)  # geventhttpclient's: read it event by event
        if raw is None or (error is not None and not resp.status_code):
            text = f"{type(error).__name__}: {error}"
            timed_out = isinstance(error, TimeoutError) or "timed out" in str(error)
            rec.update(status="timeout" if timed_out else "conn_error", err=text,
                       timeout="connect" if timed_out else None)
            return
        rec["fb"] = proc.now()
        if resp.status_code != 200 or not proc.plan["stream"]:
            _read_body(resp, rec, proc.now)
        else:
            _read_events(raw, rec, phases, proc.now, float(proc.plan["between_tokens_s"]))

    def _report(self, rec: dict[str, Any]) -> None:
        """A request that never got a response object still goes through the request event."""
        self.environment.events.request.fire(
            request_type="POST", name=process().plan["name"], response_time=0,
            response_length=0, exception=RuntimeError(rec["err"] or rec["status"]),
            context={"patternbench": rec}, response=None, url=process().plan["path"])


def _read_body(resp: Any, rec: dict[str, Any], now: Callable[[], float]) -> None:
    """A whole body: an error status, or a non-streamed completion with its usage."""
    body = resp.content or b""
    rec["done"] = now()
    if resp.status_code != 200:
        rec.update(status="refused" if resp.status_code == 503 else "http_error",
                   err=body[:300].decode("utf-8", "replace"))
    else:
        usage = json.loads(body).get("usage") or {}
        rec["n"], rec["src"] = usage.get("completion_tokens", 0), "usage"


def _read_events(raw: Any, rec: dict[str, Any], phases: _Phases, now: Callable[[], float],
                 gap_s: float) -> None:
    """An SSE stream read event by event: token times, usage, [DONE] or the reason it broke."""
    parser = SSEParser()
    tokens: list[float] = rec["tok"]
    usage_tokens: int | None = None
    done = False
    while event := raw.readline(b"\n\n"):
        at = now()
        for payload in parser.feed(event):
            chunk = read_chunk(payload)
            if chunk.error:
                rec.update(status="http_error", err=chunk.error)
                return
            done = done or chunk.done
            if chunk.token:
                tokens.append(at)
            if chunk.usage_completion_tokens is not None:
                usage_tokens = chunk.usage_completion_tokens
        if tokens:
            phases.arm(at, gap_s, "between_tokens")
    rec["done"] = now()
    rec["n"], rec["src"] = ((usage_tokens, "usage") if usage_tokens is not None
                            else (len(tokens), "counted"))
    if not done:
        rec.update(status="truncated", err="stream ended before [DONE]", done=None)


class PlanShape(LoadTestShape):
    """User count over time from the plan's `users` steps; stops at the end of the point."""

    def tick(self) -> tuple[int, float] | None:
        proc = process()
        steps = proc.plan["users"]
        start, end = proc.start_at(), proc.load_end()
        if start is None or end is None:  # not started: bring up the first users meanwhile
            users = int(steps[0][1])
        elif proc.now() >= end:
            return None
        else:
            users = max((int(count) for at, count in steps
                         if proc.now() >= start + float(at) - 1.0 - int(count) / SPAWN_RATE),
                        default=int(steps[0][1]))
        return users, float(min(SPAWN_RATE, users * 10))

