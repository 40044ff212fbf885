"""The one way a test waits for something another thread or process does: poll a predicate.

Tests never sleep to synchronize; they poll what they wait for and fail, naming it, when it does
not happen in time::

    wait_for(lambda: gauge(url, "patternbench_in_flight") == 0, timeout_s=30,
             interval_s=0.02, what="in_flight == 0")
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], bool], timeout_s: float, interval_s: float,
             what: str) -> None:
    """Call `predicate` every `interval_s` seconds until it is true; raise `AssertionError`
    naming `what` once `timeout_s` seconds have passed without it (it is always tried once)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
