"""`manifest.json`: what a run was, so that its results describe themselves.

    manifest = build_manifest(scenario, run, results_root=Path("results"), scenario_file=None,
                              device="cpu", model={"spec": "tiny", ...}, git=git_info())

holds the run id and creation time (UTC, ISO 8601), the scenario as written and `resolved`
(every default filled in; the load client's settings as `client`, and each target's own as its
`client`: the scenario's `[client]` with the target's overrides), the git commit and whether
the tree was dirty, package versions, the machine (host, CPU, cores, memory in GiB), the
device, the model (spec, folder, hash), the seed and the driver; plus `calibration`, the
harness's own overhead from `patternbench calibrate`, when `results_root/calibration.json`
exists.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import subprocess
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from harness import __version__
from harness.records.atomic import read_json
from harness.run.folder import RunDir, calibration_path
from harness.scenario.types import Scenario

PACKAGES = ("torch", "transformers", "fastapi", "uvicorn", "flask", "gunicorn", "aiohttp",
            "k6", "locust", "patternbench")


def build_manifest(scenario: Scenario, run: RunDir, *, results_root: Path,
                   scenario_file: str | None, device: str, model: dict[str, Any],
                   git: dict[str, Any]) -> dict[str, Any]:
    """The manifest of `run` (see the module docstring)."""
    calibration = read_calibration(results_root)
    return {
        "run": run.name,
        "created": now_iso(),
        "patternbench": __version__,
        "scenario": dict(scenario.raw) | {"resolved": _resolved(scenario)},
        "scenario_file": scenario_file,
        "git": git,
        "versions": versions(),
        "machine": machine(),
        "device": device,
        "model": model,
        "seeds": {"scenario": scenario.seed},
        "driver": scenario.driver,
    } | ({"calibration": calibration} if calibration else {})


def read_calibration(results_root: Path) -> dict[str, Any] | None:
    """The stored calibration under `results_root`, or None when there is none (or unreadable)."""
    try:
        data = read_json(calibration_path(results_root))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _resolved(scenario: Scenario) -> dict[str, Any]:
    return {
        "model": scenario.model,
        "driver": scenario.driver,
        "device": scenario.device,
        "workload": asdict(scenario.workload),
        "points": [asdict(p) | {"params": dict(p.params)} for p in scenario.points],
        "client": asdict(scenario.client),
        "targets": [{"name": t.name, "label": t.label, "options": dict(t.options),
                     "client": asdict(t.effective_client(scenario.client))}
                    for t in scenario.targets],
    }


def git_info(cwd: Path | None = None) -> dict[str, Any]:
    """`{"sha": <HEAD or None>, "dirty": <tracked changes, or None without git>}`."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def versions() -> dict[str, str | None]:
    """Python's version and each of `PACKAGES`' (None when not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    """Host name, platform, CPU model, cores (all and usable by this process), memory in GiB."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def now_iso() -> str:
    """Now in UTC, ISO 8601 to the second (a timestamp for people; never used in durations)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
