"""Probe a target's `GET /health` at a set interval while a load point runs.

`/health` answers without touching the model, so its latency under load measures how responsive
the server's event loop (or accept path) stays: the `fastapi_blocking` pitfall shows up here.

The probe runs in its own small process (`python -m harness.drivers.probe`), so the driver's own
CPU use and GIL never delay it. It keeps one keep-alive connection, sends at t0 + k·interval
(skipping ticks it missed while waiting on a slow answer), and appends one JSON line per probe:
`{"t": <run-clock s when sent>, "ms": <latency ms or null>, "status": <HTTP status or null>,
"error": <text or null>}`. `probe_ms` summarizes the probes sent in the measured window.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.metrics import Distribution
from harness.samples import Clock

PROBE_TIMEOUT_S = 10.0


class _Stopped(Exception):
    """Raised by the SIGTERM handler so a probe stuck on a stalled server ends at once."""


class HealthProbe:
    """Context manager: probes `url + /health` every `interval_s` into the JSONL file `path`."""

    def __init__(self, base_url: str, interval_s: float, clock: Clock, path: Path) -> None:
        self.base_url, self.interval_s, self.clock, self.path = base_url, interval_s, clock, path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HealthProbe:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.drivers.probe", self.base_url,
             "--interval", str(self.interval_s), "--origin-ns", str(self.clock.origin_ns),
             "--out", str(self.path)],
            stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        proc = self.process
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=PROBE_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_probes(path: Path) -> list[dict[str, Any]]:
    """The probe series of one point (empty when the file is missing)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def probe_summary(records: list[dict[str, Any]], since: float) -> dict[str, Any] | None:
    """`probe_ms` of summary.json: latency of successful probes sent at or after `since`."""
    dist = Distribution.of(float(r["ms"]) for r in records
                           if r.get("ms") is not None and r.get("t", -1.0) >= since)
    return dist.to_dict() if dist else None


def probe_loop(base_url: str, interval_s: float, clock: Clock, out: Any,
               stop: threading.Event) -> None:
    """Probe until `stop` is set, writing one flushed line per probe to `out`."""
    parts = urllib.parse.urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conn: http.client.HTTPConnection | None = None
    t0 = time.monotonic()
    tick = 0
    while not stop.is_set():
        sent = clock.now()
        begin = time.perf_counter()
        record: dict[str, Any] = {"t": round(sent, 6), "ms": None, "status": None, "error": None}
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            record["status"] = resp.status
            if resp.status == 200:
                record["ms"] = round((time.perf_counter() - begin) * 1000, 4)
            else:
                record["error"] = f"HTTP {resp.status}"
        except (OSError, http.client.HTTPException, _Stopped) as exc:
            stopped = isinstance(exc, _Stopped)
            record["error"] = ("no answer before the load ended" if stopped
                               else f"{type(exc).__name__}: {exc}")
            record["waited_ms"] = round((time.perf_counter() - begin) * 1000, 4)
            if conn is not None:
                conn.close()
            conn = None
            if stopped:
                stop.set()
        out.write(json.dumps(record) + "\n")
        out.flush()
        elapsed = time.monotonic() - t0
        tick = max(tick + 1, int(elapsed / interval_s) + 1)
        stop.wait(max(0.0, t0 + tick * interval_s - time.monotonic()))
    if conn is not None:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.drivers.probe", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--interval", type=float, required=True, help="seconds between probes")
    parser.add_argument("--origin-ns", type=int, required=True, help="run clock origin")
    parser.add_argument("--out", required=True, help="JSONL file to append probes to")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        raise _Stopped

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with open(args.out, "a", encoding="utf-8") as out, contextlib.suppress(_Stopped):
        probe_loop(args.base_url, args.interval, Clock(args.origin_ns), out, stop)


if __name__ == "__main__":
    main()
