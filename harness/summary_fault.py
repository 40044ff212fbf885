"""The `fault` record of a load point in summary.json: what an injected fault did
(`harness.fault`, the scenario's `[fault]` table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _doc(text: str, *default: Any) -> Any:
    return field(default=default[0], metadata={"doc": text}) if default else field(
        metadata={"doc": text})


@dataclass(frozen=True)
class FaultSummary:
    """A fault injected during the point: for "sigterm", the rolling restart's accounting."""

    kind: str = _doc("the scenario's fault.kind: sigterm")
    signal_at_s: float | None = _doc("when SIGTERM was sent, run clock, s (null: never sent)")
    exit_at_s: float | None = _doc("when the target's process exited, run clock, s (null: it "
                                   "had not exited when the point ended)")
    drain_s: float | None = _doc("signal → process exit, s")
    in_flight_at_signal: int = _doc("requests sent and not ended when the signal was sent")
    completed: int = _doc("of those in flight, how many ended ok")
    cut: int = _doc("of those in flight, how many were truncated or failed")
    sent_after: int = _doc("requests sent after the signal")
    refused_after: int = _doc("of those sent after, how many were refused (503) or found no "
                              "server (connection refused)")
