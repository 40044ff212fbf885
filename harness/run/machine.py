"""The machine a run measured on and the software it ran, as both `manifest.json` and
`calibration.json` record them:

    machine()    == Machine(hostname="ci-7", platform="Linux-6.1-x86_64-with-glibc2.36",
                            cpu="AMD EPYC 7763 64-Core Processor", cores=64, usable_cores=2,
                            memory_gb=15.6)
    versions()   == {"python": "3.11.7", "torch": "2.4.0", ..., "k6": None}  # None: not installed
    now_iso()    == "2026-12-06T01:44:03+00:00"
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil

from harness.records.typed_json import doc

PACKAGES = ("torch", "transformers", "fastapi", "uvicorn", "flask", "gunicorn", "aiohttp",
            "k6", "locust", "patternbench")


@dataclass(frozen=True)
class Machine:
    """The host a run measured on (what `patternbench gate` calls the machine kind is its CPU,
    usable cores and the run's device; never the host name)."""

    hostname: str = doc("host name")
    platform: str = doc("operating system and architecture, as Python's platform.platform()")
    cpu: str = doc("CPU model (from /proc/cpuinfo, else the architecture)")
    cores: int | None = doc("logical CPU cores of the host (null: unknown)")
    usable_cores: int = doc("logical cores this process may run on (its CPU affinity)")
    memory_gb: float = doc("physical memory, GiB (one decimal)")


def machine() -> Machine:
    """This host: name, platform, CPU model, cores (all and usable here), memory in GiB."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(hostname=socket.gethostname(), platform=platform.platform(), cpu=cpu,
                   cores=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)),
                   memory_gb=round(psutil.virtual_memory().total / 2**30, 1))


def versions() -> dict[str, str | None]:
    """Python's version and each of `PACKAGES`' (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now_iso() -> str:
    """Now in UTC, ISO 8601 to the second (a timestamp for people; never used in durations)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
