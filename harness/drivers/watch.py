"""What the runner does around one driver run: pin the driver to its cores, probe `/health`, and
afterwards note what the point must not hide (flags, the tool's own counters, probe latency).

A point whose p99 dispatch lag (sent − scheduled) passes `client.max_dispatch_lag_ms` is flagged
`driver_bound`: the load generator, not the target, set its pace, so its latency is suspect.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.drivers import LoadJob, Progress
from harness.drivers.probe import HealthProbe, probe_summary, read_probes
from harness.scenario import ClientSettings


def job_settings(client: ClientSettings) -> dict[str, Any]:
    """`LoadJob` keyword arguments taken from the scenario's `[client]` table."""
    return {"connect_timeout_s": client.connect_s, "first_token_timeout_s": client.first_token_s,
            "between_tokens_timeout_s": client.between_tokens_s,
            "connections": client.connections, "processes": client.processes}


def run_label(target_label: str, driver: str, drivers: Sequence[str]) -> str:
    """`target@driver` when a scenario runs several drivers, else the target's own label."""
    return f"{target_label}@{driver}" if len(drivers) > 1 else target_label


@contextlib.contextmanager
def pinned(cores: Sequence[int] | None) -> Iterator[None]:
    """Run this process (and what it starts meanwhile) on `cores`; restore afterwards."""
    if not cores:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cores))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class PointWatch:
    """Context manager around `driver.run`: driver pinned to `driver_cores`, `/health` probed
    into `probe_path` every `client.probe_interval_s` (0 = no probe)."""

    def __init__(self, job: LoadJob, client: ClientSettings, probe_path: Path,
                 driver_cores: Sequence[int] | None = None) -> None:
        self.job, self.client, self.probe_path = job, client, probe_path
        self.stack = contextlib.ExitStack()
        self.driver_cores = driver_cores

    def __enter__(self) -> PointWatch:
        self.stack.enter_context(pinned(self.driver_cores))
        if self.client.probe_interval_s > 0:
            self.stack.enter_context(HealthProbe(self.job.base_url, self.client.probe_interval_s,
                                                 self.job.clock, self.probe_path))
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stack.close()

    def warmup_end(self, progress: Progress) -> float:
        """End of warm-up on the run clock, counted from when the load really began."""
        if progress.started_at is None:
            return self.job.warmup_end
        return progress.started_at + self.job.point.warmup_s

    def notes(self, entry: dict[str, Any], progress: Progress) -> dict[str, Any]:
        """Keys to add to the summary point: `flags`, `driver_stats`, `probe_ms`."""
        flags = list(progress.flags)
        lag = (entry.get("dispatch_lag_ms") or {}).get("p99")
        if lag is not None and lag > self.client.max_dispatch_lag_ms:
            flags.append("driver_bound")
        out: dict[str, Any] = {"flags": flags,
                               "max_dispatch_lag_ms": self.client.max_dispatch_lag_ms}
        if progress.stats:
            out["driver_stats"] = dict(progress.stats)
        if self.client.probe_interval_s > 0:
            out["probe_ms"] = probe_summary(read_probes(self.probe_path),
                                            since=self.warmup_end(progress))
        return out
