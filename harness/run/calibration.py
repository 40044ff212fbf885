"""`calibration.json`: the typed, versioned record of the harness's own overhead.

`patternbench calibrate` (`harness.run.calibrate`) runs each driver against the zero-work echo
target and stores a `Calibration` in `<results>/calibration.json`; every later run under that
results folder copies it into its manifest (`Manifest.calibration`) and the report shows it.

    Calibration                      `calibrate()`, after its run
      load_avg_1m: LoadAverage       the machine's load before and after
      machine: Machine               `harness.run.machine.machine()`
      drivers: {name: DriverFloor}   `calibrate.figures(points)`, one per driver

`docs/results.md` lists every field and `docs/calibration.schema.json` is the JSON Schema, both
generated from these types (`python -m harness.records.docs`). `read_calibration(path)` raises
`CalibrationError` (a `RecordError`, one line) for a file it cannot read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.records.typed_json import RecordError, doc
from harness.records.versioned import decode_versioned, exact
from harness.run.folder import calibration_path
from harness.run.machine import Machine

SCHEMA_VERSION = 1
"""Bumped whenever a field is removed or changes meaning, or is added without a default that
reads the older files right. 1: the first typed record; the files written before it had no
`schema_version` and are of this shape."""


class CalibrationError(RecordError):
    """calibration.json cannot be read as a `Calibration`; the message says why in one line."""


@dataclass(frozen=True)
class DriverFloor:
    """One driver against the echo target: the floor under every figure it reports."""

    max_req_s: float | None = doc("ok requests completed per second over the measured window: "
                                  "the highest rate the driver sustained at that concurrency")
    driver_cpu_ms_per_req: float | None = doc(
        "CPU ms the driver's process tree spent per request (mean CPU % ÷ req/s); holds even "
        "when other work shares the machine")
    req_s_per_core: float | None = doc("1000 / driver_cpu_ms_per_req: requests per second one "
                                       "core of driver sustains")
    target_cpu_ms_per_req: float | None = doc("CPU ms the echo server spent per request")
    ttft_p99_ms: float | None = doc("TTFT floor, p99, ms (first byte where `timing` is "
                                    "first_byte)")
    ttft_p50_ms: float | None = doc("TTFT floor, p50, ms (first byte where `timing` is "
                                    "first_byte)")
    timing: Literal["token", "first_byte"] = doc("what the floor times: the first token, or "
                                                 "the first byte for a driver without token "
                                                 "timing (k6)")
    ok: int = doc("requests completed with every token")
    errors: int = doc("counted requests that did not complete")
    dispatch_lag_p99_ms: float | None = doc("the driver's own lag, sent − scheduled, p99, ms")


@dataclass(frozen=True)
class LoadAverage:
    """The machine's 1-minute load average around the calibration: other work on the machine
    lowers `max_req_s` (not the CPU ms per request), so rerun when it is high."""

    before: float = doc("before the run")
    after: float = doc("after the run")


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """The harness's own overhead on this machine, per driver (`patternbench calibrate`)."""

    schema_version: int = doc("version of this record's shape (absent in the files written "
                              "before it was typed: 1)", 1)
    created: str = doc("when it was measured: UTC, ISO 8601 to the second")
    run: str = doc("the calibration's own run folder name (its samples and report)")
    target: str = doc("the zero-work target every driver ran against (echo)")
    concurrency: int = doc("concurrent streams of the one closed-loop point")
    tokens_per_request: int = doc("tokens the echo target streamed per request")
    duration_s: float = doc("measured window of the point, s")
    load_avg_1m: LoadAverage = doc("the machine's 1-minute load average before and after")
    cpu_affinity: dict[str, tuple[int, ...]] = doc("cores the target and the driver were "
                                                   "pinned to, by role ({}: not pinned)")
    machine: Machine = doc("the machine it was measured on")
    versions: dict[str, str | None] = doc("Python's and the drivers' package versions (null: "
                                          "not installed)")
    drivers: dict[str, DriverFloor] = doc("figures by driver name")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = exact(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Calibration:
        """Decode a parsed calibration.json; `CalibrationError` (one line) when it does not fit."""
        return decode_versioned(cls, data, file="calibration.json", current=SCHEMA_VERSION,
                                absent=1, error=CalibrationError)


def read_calibration(path: Path) -> Calibration:
    """Read and decode `path`; `CalibrationError` when it is missing, unreadable or does not
    fit."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"{path} could not be read ({type(exc).__name__}: "
                               f"{exc})") from None
    return Calibration.from_json(data)


def stored_calibration(results_root: Path) -> Calibration | None:
    """The calibration stored under `results_root` for runs to copy, or None when there is none
    or it cannot be read (a run does not fail over a stale calibration)."""
    try:
        return read_calibration(calibration_path(results_root))
    except CalibrationError:
        return None
