"""The builtin driver's shares: one load point split over several driver processes on this
machine (`[client] processes = P`).

Process k of P runs slots k, k+P, ... of the point: `part(concurrency)` of the closed-loop
loops with request indices k, k+P, k+2P, ..., or arrivals k, k+P, ... of the schedule. Every
process stamps times on the run clock (`job.clock.origin_ns` is inherited: `perf_counter_ns` is
CLOCK_MONOTONIC, shared by all processes on Linux), so their samples merge as they are.

Processes are forked (the job, its prompts and tokenizer are inherited, not pickled). Each writes
its samples to a JSONL file the parent reads back, and its event-loop lag readings
(`progress.loop_lag`) beside it, merged into the parent's; an interrupted child writes what it
has, so an interrupted point keeps every process's samples.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.drivers.job import DriverInterrupted, LoadJob, Progress
from harness.samples import Sample, read_samples, write_samples

_COUNTERS = ("sent", "done", "errors", "tokens")


@dataclass(frozen=True)
class Share:
    """Which part of a point one driver process runs: number `index` of `count`."""

    index: int
    count: int

    def part(self, total: int) -> int:
        """This share of `total` items dealt round-robin (the first shares get the remainder)."""
        return total // self.count + (1 if self.index < total % self.count else 0)

    def indices(self) -> Iterator[int]:
        """Request indices of this share: index, index + count, ..."""
        return itertools.count(self.index, self.count)


RunShare = Callable[[LoadJob, Share, Progress], list[Sample]]


def run_shares(job: LoadJob, progress: Progress, processes: int,
               run_share: RunShare) -> list[Sample]:
    """Run `run_share` in `processes` forked processes; merge their samples and progress."""
    ctx = mp.get_context("fork")
    counters = [ctx.Array("q", len(_COUNTERS), lock=False) for _ in range(processes)]
    with tempfile.TemporaryDirectory(prefix="patternbench-shares-") as tmp:
        paths = [Path(tmp) / f"share{k}.jsonl" for k in range(processes)]
        children = [ctx.Process(target=_child, name=f"patternbench-driver-{k}",
                                args=(run_share, job, Share(k, processes), counters[k],
                                      paths[k]))
                    for k in range(processes)]
        stop = threading.Event()
        watcher = threading.Thread(target=_sum_progress, args=(counters, progress, stop),
                                   daemon=True)
        for child in children:
            child.start()
        watcher.start()
        interrupted = False
        try:
            for child in children:
                child.join()
        except KeyboardInterrupt:
            interrupted = True
            for child in children:  # they got SIGINT too and are writing what they have
                child.join(timeout=30)
        finally:
            stop.set()
            watcher.join()
            _copy_progress(counters, progress)
        samples = [s for p in paths if p.exists() for s in read_samples(p)]
        progress.loop_lag.extend(sorted(r for p in paths for r in _read_lag(p)))
        failed = [c.exitcode for c in children if c.exitcode not in (0, 130)]
    if interrupted or any(c.exitcode == 130 for c in children):
        raise DriverInterrupted(samples)
    if failed:
        raise RuntimeError(f"driver process(es) failed with exit codes {failed}")
    samples.sort(key=lambda s: s.scheduled_at)
    return samples


def _child(run_share: RunShare, job: LoadJob, share: Share, counters: Any, path: Path) -> None:
    progress = Progress()
    stop = threading.Event()
    pusher = threading.Thread(target=_push_progress, args=(progress, counters, stop),
                              daemon=True)
    pusher.start()
    code = 0
    try:
        samples = run_share(job, share, progress)
    except DriverInterrupted as exc:
        samples, code = exc.samples, 130
    stop.set()
    pusher.join()
    _push_once(progress, counters)
    path.with_suffix(".lag.json").write_text(json.dumps(progress.loop_lag), encoding="utf-8")
    write_samples(path, samples)
    if code:
        raise SystemExit(code)


def _read_lag(samples_path: Path) -> list[tuple[float, float]]:
    path = samples_path.with_suffix(".lag.json")
    if not path.exists():
        return []
    return [(float(t), float(ms)) for t, ms in json.loads(path.read_text(encoding="utf-8"))]


def _push_once(progress: Progress, counters: Any) -> None:
    for i, name in enumerate(_COUNTERS):
        counters[i] = getattr(progress, name)


def _push_progress(progress: Progress, counters: Any, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        _push_once(progress, counters)


def _copy_progress(counters: list[Any], progress: Progress) -> None:
    for i, name in enumerate(_COUNTERS):
        setattr(progress, name, sum(c[i] for c in counters))


def _sum_progress(counters: list[Any], progress: Progress, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        _copy_progress(counters, progress)
