"""The telemetry processes, each sampling until SIGTERM and appending JSON lines to FILE:

- `python -m harness.telemetry --origin-ns N --out FILE [--url U] [--target-pid P ...]
  [--driver-pid D]`: the collector (see `collector`), started by `TelemetryRecorder`;
- `python -m harness.telemetry health BASE_URL --interval S --origin-ns N --out FILE`: the
  event-loop /health probe (see `health`), started by `HealthProbe`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from harness.samples import Clock
from harness.telemetry.collector import Rates, Sink, collect
from harness.telemetry.health import probe_main


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["health"]:
        probe_main(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m harness.telemetry",
                                     description="the telemetry collector (see collector)")
    parser.add_argument("--origin-ns", type=int, required=True, help="the run clock's origin")
    parser.add_argument("--out", required=True, help="JSONL file to append records to")
    parser.add_argument("--url", default=None, help="target base URL (/health, /metrics)")
    parser.add_argument("--target-pid", type=int, action="append", default=[],
                        help="root pid of the target's process tree (repeatable)")
    parser.add_argument("--driver-pid", type=int, default=None,
                        help="root pid of the driver's tree (target pids are left out)")
    defaults = Rates()
    parser.add_argument("--gpu-interval", type=float, default=defaults.gpu_s)
    parser.add_argument("--host-interval", type=float, default=defaults.host_s)
    parser.add_argument("--health-interval", type=float, default=defaults.health_s)
    parser.add_argument("--metrics-interval", type=float, default=defaults.metrics_s)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    rates = Rates(args.gpu_interval, args.host_interval, args.health_interval,
                  args.metrics_interval)
    with open(args.out, "a", encoding="utf-8") as out:
        collect(Clock(args.origin_ns), Sink(out), stop, url=args.url,
                target_pids=args.target_pid, driver_pid=args.driver_pid,
                exclude=[os.getpid()], rates=rates)


if __name__ == "__main__":
    main()
