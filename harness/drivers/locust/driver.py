"""The locust driver: real locust, headless, running `harness/drivers/locust/locustfile.py`.

One process (locust's local runner) when `job.client.processes` is 1; otherwise a master and
`job.client.processes` worker processes on this machine (`--master` / `--worker`, over
127.0.0.1), which is the same set-up as spreading workers over machines (see docs/drivers.md).

The harness writes a plan (request bodies, schedule or concurrency, user steps, timeouts, the run
clock origin) to a JSON file the locustfile reads; every locust process stamps a request's times on
its own monotonic clock, with the one offset that places them on the run clock (exact on this
machine; a worker's from a handshake with the master, so workers may run on other machines: see
`harness.drivers.locust.clock`), and writes one record per request, delivered through locust's
`request` event, to `records-<pid>.jsonl`. `samples_from_locust` turns those records into
`Sample`s, each time shifted by its record's offset, so every duration is one machine's.

Every arrival of an open-loop schedule is accounted for: sent (a sample, ok or failed, every
failed one with `failed_at`), or never sent (no user took it before the test stopped, under
overload the most-lagged ones: a `never_sent` record, or no record at all if a worker was lost).
Never-sent arrivals are not samples (no request happened, so there is no latency or status to
record); `count_arrivals` counts them into `progress.dropped` (the point's `dropped`),
`driver_stats.never_sent`, and the flag `dropped`.

Locust is closed-loop by nature (a user is a loop). Open-loop kinds are driven by a pool of users
taking the precomputed schedule's arrivals in order: an arrival no user is free for waits, and
the wait is recorded as dispatch lag (so the point is flagged `driver_bound` rather than the
latency being silently lowered). The pool is `job.client.connections` users, or sized to the load
(in-flight requests for 4 s of latency at the intended rate, plus 8, at most the number of
arrivals); a `LoadTestShape` grows it with the rate for ramp and spike. Locust needs seconds to
boot (and workers to connect), so the load starts only once every locust process has started its
test: each writes a `ready-<pid>` file, then the driver writes `start.json` with the start time
on the run clock (`progress.started_at`) that users and shape wait for.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.arrivals import Arrival, plan, rate_curve
from harness.drivers.job import (
    MAX_AUTO_CONNECTIONS,
    DriverInterrupted,
    LoadJob,
    Progress,
    wait_stopping_on_abort,
)
from harness.run.launcher import free_port
from harness.samples import STATUSES, Sample, SampleExtra, TokenSource, timeout_phase
from harness.workload.prompts import RequestSpec
from harness.workload.request_pool import RequestPool

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PLAN_ENV = "PATTERNBENCH_LOCUST_PLAN"  # the locustfile reads the same names
START_FILE = "start.json"
NEVER_SENT = "never_sent"  # the locustfile's status of an arrival no user took


def users_needed(rate_rps: float, budget_s: float = 4.0) -> int:
    """Users an open-loop rate needs: in-flight requests for `budget_s` of latency, plus 8."""
    return math.ceil(rate_rps * budget_s) + 8


def user_steps(job: LoadJob, arrivals: Sequence[Arrival] | None) -> list[tuple[float, int]]:
    """(offset s in the point, users) steps: the pool size over time, never shrinking."""
    point = job.point
    if arrivals is None:
        assert point.concurrency is not None
        return [(0.0, point.concurrency)]
    cap = job.client.connections or min(max(1, len(arrivals)), MAX_AUTO_CONNECTIONS)
    steps: list[tuple[float, int]] = []
    peak = 0.0
    for at, rate in rate_curve(point):
        peak = max(peak, rate)
        users = min(cap, users_needed(peak))
        if not steps or users > steps[-1][1]:
            steps.append((at, users))
    return steps


def sample_from_locust(record: dict[str, Any], *, target: str, point: str, spec: RequestSpec,
                       stream: bool) -> Sample:
    """One locustfile record (local seconds, run = local + `off`) as a `Sample` on the run clock."""
    status = next((s for s in STATUSES if s == record["status"]), None)
    if status is None:
        raise ValueError(f"locust record {record.get('i')} has unknown status {record['status']!r}")
    if "off" not in record:
        raise ValueError(f"locust record {record.get('i')} has no clock offset")
    if status != "ok" and record.get("fail") is None:
        raise ValueError(f"failed locust record {record.get('i')} has no failure time")
    shift = float(record["off"])

    def run(t: Any) -> float | None:
        return None if t is None else float(t) + shift

    tokens = tuple(float(t) + shift for t in record.get("tok") or ())
    source: TokenSource = "usage" if record.get("src") == "usage" else "counted"
    timeout = timeout_phase(record["timeout"]) if record.get("timeout") else None
    n = record.get("n")
    return Sample(
        request_id=f"{target}-{point}-{int(record['i'])}",
        target=target, point=point, scheduled_at=float(record["sched"]) + shift,
        sent_at=float(record["sent"]) + shift, status=status,
        first_byte_at=run(record.get("fb")), first_token_at=tokens[0] if tokens else None,
        token_times=tokens, done_at=run(record.get("done")) if status == "ok" else None,
        failed_at=None if status == "ok" else run(record["fail"]),
        prompt_tokens=spec.prompt_tokens, output_tokens=int(n or 0),
        tokens_source=source if n is not None else "unknown",
        http_status=record.get("http"), error=record.get("err"), stream=stream,
        driver="locust", extra=SampleExtra(timeout=timeout))


def samples_from_locust(records: Iterable[dict[str, Any]], *, target: str, point: str,
                        specs: Sequence[RequestSpec], stream: bool) -> list[Sample]:
    """Every sent request's record as a sample, in scheduled order; request i used specs[i mod n].
    (`never_sent` records are counted by `count_arrivals`, not samples.)"""
    out = [sample_from_locust(r, target=target, point=point,
                              spec=specs[int(r["i"]) % len(specs)], stream=stream)
           for r in records if r["status"] != NEVER_SENT]
    out.sort(key=lambda s: s.scheduled_at)
    return out


@dataclass(frozen=True)
class ArrivalCount:
    """What became of an open-loop schedule's arrivals, from the records of every process."""

    sent: int  # distinct arrivals with a request record (ok or failed)
    never_sent: int  # a `never_sent` record: no user took it before the test stopped
    unrecorded: int  # no record at all (a locust process lost, or stopped before its test)

    @property
    def dropped(self) -> int:
        return self.never_sent + self.unrecorded


def count_arrivals(records: Iterable[dict[str, Any]], arrivals: int) -> ArrivalCount:
    """Account for each of `arrivals` scheduled arrivals (indices 0..arrivals-1)."""
    sent: set[int] = set()
    never: set[int] = set()
    for r in records:
        (never if r["status"] == NEVER_SENT else sent).add(int(r["i"]))
    never -= sent
    return ArrivalCount(sent=len(sent), never_sent=len(never),
                        unrecorded=arrivals - len(sent | never))


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Records of every locust process (a line cut by an interrupt is skipped)."""
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("records-*.jsonl")):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


class LocustDriver:
    """`worker_env[k]`: extra environment for worker k only (tests: a worker whose clock is
    shifted as another machine's would be, `harness.drivers.locust.clock.SKEW_ENV`)."""

    name = "locust"
    ready_timeout_s = 120.0  # for every locust process to boot and (workers) connect

    def __init__(self, worker_env: Sequence[Mapping[str, str]] = ()) -> None:
        self.worker_env = list(worker_env)

    def run(self, job: LoadJob, progress: Progress) -> list[Sample]:
        with tempfile.TemporaryDirectory(prefix="patternbench-locust-") as tmp:
            work = (job.work_dir or Path(tmp)).resolve()  # the tool runs in another cwd
            work.mkdir(parents=True, exist_ok=True)
            return self._run(job, progress, work)

    def _plan(self, job: LoadJob, work: Path, bodies: Sequence[bytes],
              arrivals: Sequence[Arrival] | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if job.api_key:
            headers["Authorization"] = f"Bearer {job.api_key}"
        client = job.client
        return {
            "origin_ns": job.clock.origin_ns,
            "point_s": job.point.warmup_s + job.point.duration_s,
            "path": "/v1/chat/completions" if job.workload.api == "chat" else "/v1/completions",
            "name": f"{job.target}/{job.point.name}", "headers": headers,
            "stream": job.workload.stream,
            "bodies": [b.decode() for b in bodies],
            "schedule": None if arrivals is None else [a.offset_s for a in arrivals],
            "max_requests": job.point.max_requests, "processes": max(1, client.processes),
            "users": user_steps(job, arrivals), "records_dir": str(work),
            "connect_s": client.connect_s, "first_token_s": client.first_token_s,
            "between_tokens_s": client.between_tokens_s, "total_s": job.timeout_s,
        }

    def _run(self, job: LoadJob, progress: Progress, work: Path) -> list[Sample]:
        arrivals = plan(job.point, job.seed)
        pool = RequestPool(job, arrivals)
        for old in [*work.glob("records-*.jsonl"), *work.glob("ready-*"), work / START_FILE]:
            old.unlink(missing_ok=True)
        workers = job.client.processes if job.client.processes > 1 else 0
        plan_data = self._plan(job, work, pool.bodies, arrivals)
        (work / "plan.json").write_text(json.dumps(plan_data), encoding="utf-8")
        env = {"PYTHONUNBUFFERED": "1", PLAN_ENV: str(work / "plan.json")}
        base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
        stop_timeout = str(math.ceil(job.timeout_s))
        head = [*base, "--headless", "--host", job.base_url, "--stop-timeout", stop_timeout,
                "--only-summary", "--exit-code-on-error", "0"]
        procs: list[subprocess.Popen[bytes]] = []
        port = free_port()
        if workers:
            head += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                     str(port), "--expect-workers", str(workers)]
        interrupted = False
        with (work / "locust.log").open("ab") as log:
            procs.append(_start(head, env, log))
            procs += [_start([*base, "--worker", "--master-host", "127.0.0.1", "--master-port",
                              str(port)], {**env, **self._worker_env(k)}, log)
                      for k in range(workers)]
            try:
                start_at = self._start(procs, work, job, expected=workers + 1)
                progress.started_at = start_at
                self._wait(procs, work, progress)
            except KeyboardInterrupt:
                interrupted = True  # locust got SIGINT too: it stops and flushes its records
                for proc in procs:
                    proc.wait(timeout=job.timeout_s + 30)
        records = read_records(work)
        samples = samples_from_locust(records, target=job.target, point=job.point.name,
                                      specs=pool.specs, stream=job.workload.stream)
        progress.stats.update({"users": plan_data["users"][-1][1], "workers": workers})
        _count(records, arrivals, progress)
        if interrupted:
            raise DriverInterrupted(samples)
        code = procs[0].returncode
        if code != 0 and not samples:
            text = (work / "locust.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"locust exited with code {code}: {text}")
        return samples

    def _worker_env(self, k: int) -> Mapping[str, str]:
        return self.worker_env[k] if k < len(self.worker_env) else {}

    def _start(self, procs: list[subprocess.Popen[bytes]], work: Path, job: LoadJob,
               expected: int) -> float:
        """Once every locust process has started its test, set the load's start (run clock)."""
        give_up = time.monotonic() + self.ready_timeout_s
        while len(list(work.glob("ready-*"))) < expected and time.monotonic() < give_up:
            if any(p.poll() is not None for p in procs):
                break  # one exited early: the log says why; nothing will be recorded
            time.sleep(0.05)
        start_at = job.clock.now() + 0.25  # time for the waiting users to read it
        tmp = work / f".{START_FILE}.tmp"
        tmp.write_text(json.dumps({"start_at": start_at}), encoding="utf-8")
        tmp.replace(work / START_FILE)
        return start_at

    @staticmethod
    def _wait(procs: list[subprocess.Popen[bytes]], work: Path, progress: Progress) -> None:
        """Wait for the master (or local runner), then its workers; count records meanwhile."""
        seen: dict[Path, tuple[int, int]] = {}  # file → (bytes read, request lines)
        never = b'"status":"%s"' % NEVER_SENT.encode()  # the locustfile's compact JSON

        def count() -> None:
            for path in work.glob("records-*.jsonl"):
                offset, lines = seen.get(path, (0, 0))
                with path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                seen[path] = (offset + len(data),
                              lines + data.count(b"\n") - data.count(never))
            progress.sent = progress.done = sum(lines for _, lines in seen.values())

        # a dead target: SIGTERM, locust's graceful quit (the master tells its workers)
        wait_stopping_on_abort(procs[0], progress, signal.SIGTERM, poll_s=0.5, each_poll=count)
        for proc in procs[1:]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _count(records: Sequence[dict[str, Any]], arrivals: Sequence[Arrival] | None,
           progress: Progress) -> None:
    """Never-sent arrivals into `progress` (a closed loop has no arrivals to miss: 0), and the
    largest clock-offset uncertainty of the records (0 when every process was on this machine)."""
    errors = [float(r.get("off_err") or 0.0) for r in records]
    progress.stats["clock_error_ms"] = round(max(errors, default=0.0) * 1000, 3)
    if arrivals is None:
        progress.dropped = 0
        return
    count = count_arrivals(records, len(arrivals))
    progress.dropped = count.dropped
    progress.stats.update(never_sent=count.dropped, unrecorded=count.unrecorded)
    if count.dropped and "dropped" not in progress.flags:
        progress.flags.append("dropped")


def _start(argv: list[str], env: Mapping[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env})
