"""Host sampler through psutil: CPU and memory of the target's process tree and of the driver's.

The target's tree is its root process (what the launcher started) and every descendant: gunicorn
workers, process-pool replicas, vLLM's engine processes. The driver's tree is the runner process
(where the builtin driver runs) and its descendants — driver worker processes, the /health probe
process, k6 or locust — less every target process and less the telemetry collector itself.
Each `sample()` returns one `host` record:

    {"kind": "host", "t": 12.5, "target_cpu_pct": 187.2, "target_rss_mb": 1402.1,
     "target_pss_mb": 1210.4, "target_procs": 3, "driver_cpu_pct": 41.0, "driver_rss_mb": 96.3,
     "driver_pss_mb": 90.1, "driver_procs": 1}

- `*_cpu_pct`: CPU time (user + system, every thread) the tree used since the previous sample,
  over the time between the samples on the run clock; 100 = one core busy. Null on the first
  sample. A process counts from the first sample that sees it.
- `*_rss_mb`: resident set size summed over the tree, MiB. Pages shared between processes (a
  forked worker's copy-on-write memory) count once per process; `*_pss_mb` (proportional set
  size, Linux) splits them, so it adds up — null where the kernel does not provide it. PSS
  is read at most every `PSS_EVERY_S` per process (the value in between is the last one read):
  the kernel walks every page table of the process to compute it, ~100–190 ms for each of
  vLLM's multi-GB processes here, which at every sample took half of the driver's core and
  contended with the target for its memory map.
- `*_procs`: processes in the tree. A target whose root has exited has 0 processes and null
  memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import psutil

from harness.samples import Clock
from harness.telemetry.store import Record

MIB = 1024 * 1024
PSS_EVERY_S = 5.0  # seconds between two PSS reads of one process (RSS: every sample)
ProcKey = tuple[int, float]  # (pid, create_time): a pid reused by a new process is a new key


def process_tree(root_pid: int | None) -> list[psutil.Process]:
    """The root process and all its descendants; empty when the root is gone."""
    if root_pid is None:
        return []
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


class TreeMeter:
    """CPU % and memory of a set of processes, from one call to the next."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.last_t: float | None = None
        self.last_cpu: dict[ProcKey, float] = {}
        self.pss: dict[ProcKey, tuple[float, int | None]] = {}  # (read at, bytes)

    def measure(self, procs: Iterable[psutil.Process], prefix: str) -> Record:
        t = self.clock.now()
        cpu: dict[ProcKey, float] = {}
        rss = pss = 0
        have_pss = True
        count = 0
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    times = proc.cpu_times()
                    memory = proc.memory_info()
                    full = self._pss(proc, key, t)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            count += 1
            cpu[key] = times.user + times.system
            rss += memory.rss
            if full is None:
                have_pss = False
            else:
                pss += full
        used = sum(cpu[k] - self.last_cpu[k] for k in cpu if k in self.last_cpu)
        cpu_pct = None
        if self.last_t is not None and t > self.last_t:
            cpu_pct = round(max(0.0, used) / (t - self.last_t) * 100, 2)
        self.last_t, self.last_cpu = t, cpu
        self.pss = {k: v for k, v in self.pss.items() if k in cpu}  # forget ended processes
        return {
            f"{prefix}_cpu_pct": cpu_pct,
            f"{prefix}_rss_mb": round(rss / MIB, 2) if count else None,
            f"{prefix}_pss_mb": round(pss / MIB, 2) if count and have_pss else None,
            f"{prefix}_procs": count,
        }


    def _pss(self, proc: psutil.Process, key: ProcKey, t: float) -> int | None:
        """`proc`'s PSS, read again only when the last read is `PSS_EVERY_S` old."""
        last = self.pss.get(key)
        if last is None or t - last[0] >= PSS_EVERY_S:
            last = (t, _full_memory(proc))
            self.pss[key] = last
        return last[1]


def _full_memory(proc: psutil.Process) -> int | None:
    """PSS in bytes where the platform reports it (Linux smaps_rollup), else None."""
    try:
        return int(getattr(proc.memory_full_info(), "pss", None) or 0) or None
    except (psutil.AccessDenied, AttributeError, NotImplementedError):
        return None


class HostSampler:
    """CPU and memory of the target's tree and of the driver's tree, once per `sample()`.

    `target_pids` returns the roots of the target (its own process and companions, e.g. a
    proxy's upstream); it is a callable so a restarted target is followed. `exclude` lists
    pids never counted as driver (the collector passes its own).
    """

    kind = "host"

    def __init__(self, clock: Clock, target_pids: Callable[[], list[int]],
                 driver_pid: int | None, exclude: Iterable[int] = ()) -> None:
        self.clock = clock
        self.target_pids = target_pids
        self.driver_pid = driver_pid
        self.exclude = set(exclude)
        self.target = TreeMeter(clock)
        self.driver = TreeMeter(clock)

    def sample(self) -> list[Record]:
        target_procs: dict[int, psutil.Process] = {}
        for root in self.target_pids():
            target_procs |= {p.pid: p for p in process_tree(root)}
        driver_procs = [p for p in process_tree(self.driver_pid)
                        if p.pid not in target_procs and p.pid not in self.exclude]
        t = self.clock.now()
        record: Record = {"kind": "host", "t": round(t, 6)}
        record |= self.target.measure(target_procs.values(), "target")
        record |= self.driver.measure(driver_procs, "driver")
        return [record]
