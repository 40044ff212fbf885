"""The venvs of the framework targets that run our model (`ray_serve`, `litserve`).

Each framework lives in a venv of its own (`make ray`, `make litserve`) with this project
installed into it, so `.venv` (what `make bench` runs) keeps its own packages. The launcher starts
`python -m targets NAME` from `.venv` like any target; the target's `serve` then replaces that
process (`os.execve`) with the same command run by the framework venv's python, so the process the
launcher holds (its pid, its SIGTERM, its process group) is the framework's own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class FrameworkVenv:
    target: str
    folder: str  # default venv folder at the repository root
    env_var: str  # overrides the folder
    make: str  # what creates it
    package: str  # a path inside site-packages that proves the install
    size: str  # what the install costs, for the message


VENVS: dict[str, FrameworkVenv] = {
    "ray_serve": FrameworkVenv("ray_serve", ".venv-ray", "PATTERNBENCH_RAY_VENV", "make ray",
                               "ray/serve", "~3 min, ~2 GB with torch; ray[serve]==2.60.0"),
    "litserve": FrameworkVenv("litserve", ".venv-litserve", "PATTERNBENCH_LITSERVE_VENV",
                              "make litserve", "litserve",
                              "~2 min, ~1.7 GB with torch; litserve==0.2.19"),
}


def venv_dir(target: str, options: Mapping[str, Any] | None = None) -> Path:
    """Option `venv`, else the target's environment variable, else its default folder."""
    spec = VENVS[target]
    configured = (options or {}).get("venv") or os.environ.get(spec.env_var)
    return Path(configured).expanduser() if configured else REPO_ROOT / spec.folder


def install_error(target: str, options: Mapping[str, Any] | None = None) -> str | None:
    """One line saying how to install `target`'s framework when its venv lacks it; else None."""
    spec = VENVS[target]
    venv = venv_dir(target, options)
    if not (venv / "bin" / "python").exists():
        return (f"{target}: {venv} does not exist; run `{spec.make}` to create it "
                f"({spec.size}, in a venv of its own)")
    if next((venv / "lib").glob(f"python3*/site-packages/{spec.package}"), None) is None:
        return f"{target}: {venv} has no {spec.package}; run `{spec.make}` (or remove {venv} first)"
    return None


def in_venv(target: str, options: Mapping[str, Any] | None = None) -> bool:
    """Whether this interpreter is the one of `target`'s venv."""
    return Path(sys.prefix).resolve() == venv_dir(target, options).resolve()


def reexec_in_venv(target: str, options: Mapping[str, Any] | None = None) -> None:
    """Replace this process with `python -m targets ...` (this process's arguments) run by the
    framework venv's python; return only when already running in it. Exits with one line when
    the venv is missing."""
    if in_venv(target, options):
        return
    error = install_error(target, options)
    if error:
        raise SystemExit(error)
    python = venv_dir(target, options) / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(REPO_ROOT)  # this checkout's sources, whatever the venv installed
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, [str(python), "-m", "targets", *sys.argv[1:]], env)
