"""The layout of a run folder on disk: the one place its paths are spelled.

    results/<YYYYmmdd-HHMMSS>-<scenario>-<sha7>/   RunDir.create(results_root, scenario, sha)
      manifest.json                  what ran: resolved scenario, git, versions, machine, model
      summary.json                   metrics per target × load point, rewritten after each point
      samples/<label>/<point>.jsonl  one `Sample` per request
      telemetry/<label>.jsonl        telemetry records of every point of one target
      logs/<label>.log               the target's stdout and stderr
      probes/<label>/<point>.jsonl   the /health probe during the point
      drivers/<label>/<point>/       k6's and locust's scripts and raw output
    reports/<run>/                   its HTML report (`report_dir`)
    results/calibration.json         `patternbench calibrate`'s figures (`calibration_path`)

`<label>` is the target's label (`target@driver` when a scenario names several drivers),
`<point>` the load point's name. Every path is a plain `Path`; nothing is created but the run
folder itself (writers create their folders, see `harness.records.atomic`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class RunDir:
    """One run folder, `results/<run>/`; `RunDir(path)` for an existing one."""

    path: Path

    @classmethod
    def create(cls, results_root: Path, scenario: str, sha: str | None) -> RunDir:
        """Make a new, empty run folder named after now, the scenario and the commit (a `-2`,
        `-3`, ... suffix when that name is taken)."""
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{scenario}-{(sha or 'nogit')[:7]}"
        path = results_root / base
        n = 1
        while path.exists():
            n += 1
            path = results_root / f"{base}-{n}"
        path.mkdir(parents=True)
        return cls(path)

    @property
    def name(self) -> str:
        """The run id: the folder's name."""
        return self.path.name

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    def samples(self, label: str, point: str) -> Path:
        return self.path / "samples" / label / f"{point}.jsonl"

    @property
    def telemetry_dir(self) -> Path:
        return self.path / "telemetry"

    def telemetry(self, label: str) -> Path:
        return self.telemetry_dir / f"{label}.jsonl"

    def log(self, label: str) -> Path:
        return self.path / "logs" / f"{label}.log"

    def probes(self, label: str, point: str) -> Path:
        return self.path / "probes" / label / f"{point}.jsonl"

    def driver_work(self, label: str, point: str) -> Path:
        """Where k6 and locust keep their scripts and raw output for one point."""
        return self.path / "drivers" / label / point

    def report_dir(self, reports_root: Path) -> Path:
        """This run's report folder: `reports_root/<run>/`."""
        return reports_root / self.name


def calibration_path(results_root: Path) -> Path:
    """`results_root/calibration.json`, which every run under that root copies into its
    manifest."""
    return results_root / CALIBRATION_FILE
