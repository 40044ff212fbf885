"""The run folder on disk: `results/<YYYYmmdd-HHMMSS>-<scenario>-<sha>/`.

Everything is written atomically (temp file in the same folder, then rename), so an interrupted
run leaves complete files for whatever it measured. The manifest makes a run self-describing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from harness.atomic import write_text

PACKAGES = ("torch", "transformers", "fastapi", "uvicorn", "flask", "gunicorn", "aiohttp",
            "k6", "locust", "patternbench")


def write_json(path: Path, data: Any) -> None:
    write_text(path, [json.dumps(data, indent=2, default=str), "\n"])


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def git_info(cwd: Path | None = None) -> dict[str, Any]:
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


def new_run_dir(results_root: Path, scenario: str, sha: str | None) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{scenario}-{(sha or 'nogit')[:7]}"
    path = results_root / base
    n = 1
    while path.exists():
        n += 1
        path = results_root / f"{base}-{n}"
    path.mkdir(parents=True)
    return path


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
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
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
