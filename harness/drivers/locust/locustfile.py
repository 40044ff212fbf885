"""The locustfile `harness.drivers.locust.driver` runs: never import it from the harness
(importing locust monkey-patches the standard library with gevent). Locust loads it by path in
every locust process.

What it does, in each process (local runner, or each worker of a distributed run):

- `StreamingUser` (a `FastHttpUser`) sends the point's requests, reads the SSE stream event by
  event (`readline(b"\\n\\n")` on geventhttpclient's response) and stamps, on this process's own
  monotonic clock, the scheduled, sent, first-byte, per-token and done (or failed) times of each
  request. Each record carries the process's clock offset (`off`, `off_err`): run-clock time =
  local time + `off` (see `harness.drivers.locust.clock`: exact on the harness's machine, from a
  handshake with the master on a worker, which may run on another machine).
- It reports each request through locust's own `request` event, with the times in its `context`;
  a listener writes them as one JSON line to `records-<pid>.jsonl` (see `RECORD_KEYS`). Every
  exception inside the request leaves a record: a stream cut (geventhttpclient's
  `HTTPConnectionClosed`/`HTTPParseError`, a socket error) is `truncated`, a body that is not
  JSON is `http_error`, and every failed record carries `fail`, when it ended.
- Closed loop: each user sends its next request as soon as the last one ended. Open loop: the
  users of a process take the schedule's arrivals (process k of N: arrivals k, k+N, ...) in order,
  each sleeping until its arrival is due; when every user is busy an arrival waits, and that wait
  is recorded as dispatch lag (locust itself is closed-loop: a user is a loop, so the pool must be
  large enough for the in-flight requests, which the harness sizes). An arrival no user took
  before the test stopped gets a record of status `never_sent` (at test stop), so every arrival
  of the schedule is accounted for.
- Start: each process writes `ready-<pid>` when its test starts (a worker once its clock
  handshake is done); the harness then writes `start.json` (the load's start on the run clock),
  which users and shape wait for, so a slow boot or worker connection never eats into the
  schedule.
- `PlanShape` (a `LoadTestShape`) sets the user count over time (growing with the intended rate
  for ramp and spike, never shrinking, so no in-flight request is cut) and ends the test at the
  end of the point; locust's `--stop-timeout` lets in-flight requests finish (one still running
  when it runs out is recorded as a `timeout` of phase `stop`).

Timeouts: connect (`connection_timeout`), and first token / between tokens / total as gevent
timeouts around the request, each classified in the record.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import IO, Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type information
import gevent.queue  # type: ignore[import-untyped]
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from harness.drivers.locust.clock import (
    MESSAGE,
    PINGS,
    SKEW_ENV,
    ClockOffset,
    exact_offset,
    offset_from_pings,
)
from harness.drivers.locust.record import (
    NEVER_SENT,
    Expired,
    Phases,
    failed_read,
    read_body,
    read_events,
    settle,
)

SPAWN_RATE = 100  # users per second (locust warns above 100)
START_FILE = "start.json"
PLAN_ENV = "PATTERNBENCH_LOCUST_PLAN"


class _Process:
    """This locust process's plan, clock, share of the requests and record file."""

    def __init__(self) -> None:
        with open(os.environ[PLAN_ENV], encoding="utf-8") as fh:
            self.plan: dict[str, Any] = json.load(fh)
        self.origin_ns = int(self.plan["origin_ns"])  # the run clock's, on the harness's machine
        self.local_origin_ns = time.perf_counter_ns()
        self.skew_ns = 0  # a worker's test-only shift (see harness.drivers.locust.clock)
        self.clock: ClockOffset | None = exact_offset(self.local_origin_ns, self.origin_ns)
        self.replies: Any = gevent.queue.Queue()
        self.out: IO[str] | None = None
        self.flushed = 0.0
        self.started: float | None = None
        self.next: Iterator[tuple[int, float | None]] | None = None
        self.sends = True  # False on the master, which sends no request

    def now(self) -> float:
        """Seconds on this process's own clock."""
        return (time.perf_counter_ns() + self.skew_ns - self.local_origin_ns) / 1e9

    def offset(self) -> ClockOffset:
        while self.clock is None:  # a worker before its handshake
            gevent.sleep(0.02)
        return self.clock

    def run_now(self) -> float:
        return self.now() + self.offset().offset_s

    def bind(self, environment: Environment) -> None:
        """Take this process's role: a worker's clock comes from a handshake with the master."""
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            self.sends = False
            runner.register_message(MESSAGE, self._answer_ping)
        elif isinstance(runner, WorkerRunner):
            self.skew_ns = round(float(os.environ.get(SKEW_ENV) or 0) * 1e9)
            self.clock = None
            runner.register_message(MESSAGE, self._take_answer)

    def _answer_ping(self, environment: Environment, msg: Any) -> None:
        """Master: the run-clock time, to the worker that asked."""
        assert environment.runner is not None
        environment.runner.send_message(MESSAGE, {"t0": msg.data["t0"], "run": self.run_now()},
                                        client_id=msg.node_id)

    def _take_answer(self, environment: Environment, msg: Any) -> None:
        self.replies.put((float(msg.data["t0"]), float(msg.data["run"]), self.now()))

    def handshake(self, runner: Any) -> None:
        """Worker: ping the master (see `clock`), set the offset, then report ready."""
        pings = []
        for _ in range(PINGS):
            t0 = self.now()
            runner.send_message(MESSAGE, {"t0": t0})
            try:
                while (answer := self.replies.get(timeout=5.0))[0] != t0:
                    continue  # the late answer of a ping already given up on
            except gevent.queue.Empty:
                continue
            pings.append(answer)
        self.clock = offset_from_pings(pings)
        self.ready()

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
        """When the load starts, on this process's own clock."""
        while (start := self.start_at()) is None:
            gevent.sleep(0.02)
        return start - self.offset().offset_s

    def load_end(self) -> float | None:
        """When the load ends (run clock)."""
        start = self.start_at()
        return None if start is None else start + float(self.plan["point_s"])

    def share(self, environment: Environment) -> Iterator[tuple[int, float | None]]:
        """(index, due local time or None for closed loop) of this process's requests."""
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

    def never_sent(self, environment: Environment) -> None:
        """At test stop: a record for each arrival of this process's share no user took."""
        if (not self.sends or self.plan["schedule"] is None or self.start_at() is None
                or self.clock is None):
            return  # closed loop has no arrivals to miss; not started: the harness counts them
        for index, due in self.share(environment):
            self.record(self.stamp({"i": index, "sched": due, "status": NEVER_SENT}))

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with this process's clock offset (run = local + off)."""
        clock = self.offset()
        record.update(off=clock.offset_s, off_err=clock.error_s)
        return record

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


def _on_init(environment: Environment, **_: Any) -> None:
    process().bind(environment)


def _on_start(environment: Environment, **_: Any) -> None:
    proc = process()
    if proc.clock is None:  # a worker: ready once its clock is placed (without blocking locust)
        gevent.spawn(proc.handshake, environment.runner)
    else:
        proc.ready()


def _on_stop(environment: Environment, **_: Any) -> None:
    process().never_sent(environment)
    process().flush()


def _on_quit(**_: Any) -> None:
    process().flush()


# A locustfile registers its listeners when locust loads it (locust's own convention).
# (EventHook.add_listener carries no annotations, hence the ignores.)
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
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
        try:
            if wait > 0:
                gevent.sleep(wait)
        except gevent.GreenletExit:  # stopped while waiting for its arrival: never sent
            if due is not None:
                proc.record(proc.stamp({"i": index, "sched": due, "status": NEVER_SENT}))
            raise
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
        rec: dict[str, Any] = proc.stamp({
            "i": index, "sched": scheduled, "sent": proc.now(), "fb": None, "tok": [],
            "done": None, "fail": None, "status": "ok", "http": None, "n": None, "src": "counted",
            "err": None, "timeout": None})
        phases = Phases(rec["sent"] + float(plan["total_s"]))
        phases.arm(proc.now(), float(plan["first_token_s"]), "first_token")
        reported = False
        try:
            resp: Any = self.client.request(
                "POST", plan["path"], data=plan["bodies"][index % len(plan["bodies"])],
                headers=plan["headers"], stream=True, catch_response=True, name=plan["name"])
            with resp:
                try:
                    self._read(resp, rec, phases)
                except Exception as exc:  # a stream cut, a parse error, a body that is not JSON
                    failed_read(rec, exc, stream=bool(plan["stream"]))
                settle(rec, proc.now())
                end = rec["done"] or rec["fail"]
                resp.request_meta["response_time"] = (end - rec["sent"]) * 1000
                resp.request_meta["context"] = {"patternbench": rec}
                if rec["status"] == "ok":
                    resp.success()
                else:
                    resp.failure(rec["err"] or rec["status"])
            reported = True
        except Expired as exc:
            rec.update(status="timeout", timeout=exc.phase, done=None, fail=proc.now(),
                       err=f"timeout ({exc.phase})")
        except gevent.GreenletExit:  # --stop-timeout ran out while it was in flight
            rec.update(status="timeout", timeout="stop", done=None, fail=proc.now(),
                       err="timeout (stop): still in flight when the test stopped")
            self._report(rec)
            raise
        except Exception as exc:  # anything else on the way: the request still leaves a record
            if not reported:
                failed_read(rec, exc, stream=bool(plan["stream"]))
                settle(rec, proc.now())
        finally:
            phases.close()
        if not reported:
            self._report(rec)

    def _read(self, resp: Any, rec: dict[str, Any], phases: Phases) -> None:
        """Fill `rec` from the response; phase timers raise `Expired` out of here."""
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
            read_body(resp, rec, proc.now)
        else:
            read_events(raw, rec, phases, proc.now, float(proc.plan["between_tokens_s"]))

    def _report(self, rec: dict[str, Any]) -> None:
        """A request that never got a response object still goes through the request event."""
        self.environment.events.request.fire(
            request_type="POST", name=process().plan["name"], response_time=0,
            response_length=0, exception=RuntimeError(rec["err"] or rec["status"]),
            context={"patternbench": rec}, response=None, url=process().plan["path"])


class PlanShape(LoadTestShape):
    """User count over time from the plan's `users` steps; stops at the end of the point."""

    def tick(self) -> tuple[int, float] | None:
        proc = process()
        steps = proc.plan["users"]
        start, end = proc.start_at(), proc.load_end()
        if start is None or end is None:  # not started: bring up the first users meanwhile
            users = int(steps[0][1])
        elif proc.run_now() >= end:
            return None
        else:
            users = max((int(count) for at, count in steps
                         if proc.run_now() >= start + float(at) - 1.0 - int(count) / SPAWN_RATE),
                        default=int(steps[0][1]))
        return users, float(min(SPAWN_RATE, users * 10))

